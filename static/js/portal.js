// The portal's own script: small behaviours htmx does not cover. No inline scripts (the CSP forbids them).
(function () {
  "use strict";
  // A form's error summary takes the focus, so a screen reader announces it and the keyboard starts there;
  // its links focus the field they name (a fragment link alone only scrolls).
  function focusSummary(root) {
    var summary = (root || document).querySelector("#error-summary");
    if (summary) summary.focus();
  }
  document.addEventListener("DOMContentLoaded", function () { focusSummary(document); });
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("#error-summary a[href^='#'], .blockers a[href^='#']");
    if (!link) return;
    var field = document.getElementById(link.getAttribute("href").slice(1));
    if (field) {
      event.preventDefault();
      field.focus();
      field.scrollIntoView({block: "center"});
    }
  });
  // A form with data-send-changed="NAME" sends, with each request its change triggers, the name of the field
  // that changed as parameter NAME (the server re-fills what depends on it). Without eval: the CSP forbids it.
  document.addEventListener("htmx:configRequest", function (event) {
    var form = event.detail.elt, param = form && form.dataset && form.dataset.sendChanged;
    if (!param) return;
    var trigger = event.detail.triggeringEvent, target = trigger && trigger.target;
    event.detail.parameters[param] = (target && target.name) || "";
  });
})();
