/* "Copy" buttons beside installation numbers. Without JavaScript the buttons stay hidden and
   the number is plain selectable text. A button names the element to copy in data-copy and
   its "copied" label in data-copied; #copy-status tells screen readers it worked. */
(function () {
  "use strict";

  function copyText(text, source) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain http on another host: no Clipboard API, so select the number and copy that.
    var range = document.createRange();
    range.selectNodeContents(source);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    var copied = false;
    try {
      copied = document.execCommand("copy");
    } catch (error) {
      copied = false;
    }
    return copied ? Promise.resolve() : Promise.reject(new Error("copy failed"));
  }

  function confirmCopied(button) {
    var label = button.getAttribute("data-copied");
    var status = document.getElementById("copy-status");
    if (!button.hasAttribute("data-label")) {
      button.setAttribute("data-label", button.innerHTML);
    }
    button.textContent = label;
    button.classList.add("is-copied");
    if (status) {
      status.textContent = label;
    }
    window.clearTimeout(button._copyTimer);
    button._copyTimer = window.setTimeout(function () {
      button.innerHTML = button.getAttribute("data-label");
      button.classList.remove("is-copied");
      if (status) {
        status.textContent = "";
      }
    }, 2000);
  }

  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) {
      return;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      copyText(source.textContent.trim(), source).then(
        function () {
          confirmCopied(button);
        },
        function () {
          // Could not copy: leave the number selected so Ctrl+C works.
          var range = document.createRange();
          range.selectNodeContents(source);
          window.getSelection().removeAllRanges();
          window.getSelection().addRange(range);
        }
      );
    });
  });
})();
