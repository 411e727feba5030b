// Follows a large contact import: polls its progress and reloads the page once it is finished.
(function () {
  "use strict";
  var box = document.getElementById("import-progress");
  if (!box) {
    return;
  }
  var bar = box.querySelector("progress");
  var text = box.querySelector("[data-progress-text]");

  function poll() {
    fetch(box.dataset.progressUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        return response.ok ? response.json() : Promise.reject(response.status);
      })
      .then(function (progress) {
        bar.max = progress.total;
        bar.value = progress.processed;
        text.textContent = progress.processed.toLocaleString() + " of " + progress.total.toLocaleString();
        if (progress.status === "importing") {
          window.setTimeout(poll, 1000);
        } else {
          window.location.reload();
        }
      })
      .catch(function () {
        window.setTimeout(poll, 5000);
      });
  }

  window.setTimeout(poll, 1000);
})();
