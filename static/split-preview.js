// The posting form's payout preview follows what is typed: on each change the split fields go
// to /problems/split-preview, whose HTML fragment replaces the preview (templates/problems/_split_preview_live.html).
(function () {
  var box = document.getElementById("split-preview");
  var form = box && document.querySelector("form input[name=bounty]") && document.querySelector("form input[name=bounty]").form;
  if (!form) return;
  var names = ["bounty", "currency", "split_rule", "hop_fee_percent", "finder_percent", "max_depth", "candidate_share_percent"];
  var timer = null;
  function refresh() {
    var query = new URLSearchParams();
    names.forEach(function (name) {
      var field = form.elements[name];
      if (field) query.set(name, field.value);
    });
    fetch(box.dataset.url + "?" + query.toString(), { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) { if (html !== null) box.innerHTML = html; });
  }
  form.addEventListener("input", function (event) {
    if (names.indexOf(event.target.name) === -1) return;
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  });
  form.addEventListener("change", function (event) {
    if (names.indexOf(event.target.name) !== -1) refresh();
  });
})();
