/* Forms that create something (those with a hidden idempotency_key) are sent once: after the
   first submit its buttons are disabled, and further submits (a double click, Enter pressed
   again) are ignored. The buttons are disabled only once the browser has read the form, so a
   button's own name and value still go with it. Coming back to the page (the back button,
   which may show it from the browser's cache) enables them again. Without JavaScript the
   key alone makes a second sending create nothing new. */
(function () {
  "use strict";

  var SELECTOR = "form input[name='idempotency_key']";

  function buttons(form) {
    return form.querySelectorAll("button[type='submit'], button:not([type]), input[type='submit']");
  }

  document.querySelectorAll(SELECTOR).forEach(function (input) {
    var form = input.form;
    form.addEventListener("submit", function (event) {
      if (form.getAttribute("data-sent") === "true") {
        event.preventDefault();
        return;
      }
      form.setAttribute("data-sent", "true");
      window.setTimeout(function () {
        buttons(form).forEach(function (button) {
          button.disabled = true;
          button.setAttribute("aria-busy", "true");
        });
      }, 0);
    });
  });

  window.addEventListener("pageshow", function () {
    document.querySelectorAll(SELECTOR).forEach(function (input) {
      var form = input.form;
      form.removeAttribute("data-sent");
      buttons(form).forEach(function (button) {
        button.disabled = false;
        button.removeAttribute("aria-busy");
      });
    });
  });
})();
