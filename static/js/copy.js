/* The copy button of a read-only text (the WeChat reminder): copies with the clipboard API
   where the browser allows it, and otherwise selects the whole text for the user to copy.
   Without this script the button stays hidden and the text can be selected by hand. */
(function () {
  "use strict";

  function selectAll(area) {
    area.focus();
    area.select();
    area.setSelectionRange(0, area.value.length);
  }

  function legacyCopy(area) {
    selectAll(area);
    try {
      return document.execCommand("copy");
    } catch (error) {
      return false;
    }
  }

  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var area = document.getElementById(button.getAttribute("data-copy"));
    var status = document.getElementById(area ? area.id.replace(/-text$/, "-status") : "");
    if (!area) {
      return;
    }
    function say(key) {
      if (status) {
        status.textContent = status.getAttribute(key) || "";
      }
    }
    function fallBack() {
      say(legacyCopy(area) ? "data-copied" : "data-selected");
      selectAll(area);
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(area.value).then(function () {
          selectAll(area);  // shows what was copied
          say("data-copied");
        }, fallBack);
      } else {
        fallBack();
      }
    });
  });
}());
