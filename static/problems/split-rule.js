// The problem form: show only the chosen split rule's own fields. Without JavaScript every field
// stays visible, each labelled with the rule it belongs to.
(function () {
  var rule = document.querySelector('select[name="split_rule"]');
  if (!rule) return;
  var fields = document.querySelectorAll('[data-split-rule]');
  function show() {
    fields.forEach(function (field) {
      var group = field.closest('.mb-3') || field.parentElement;
      group.hidden = field.getAttribute('data-split-rule') !== rule.value;
    });
  }
  rule.addEventListener('change', show);
  show();
})();
