/* The start form's checks in the browser, before anything is posted. Each field with a
   data-pattern (the input schema's own pattern, or Step Functions' execution-name rule, written
   into the page by bisonflow.console.start_form) is checked when it changes and on submit; a
   refused value shows, by its field, the rule's own words (data-description) and blocks the
   submit. The server checks again with the same schema: this only answers sooner.

   The patterns are JSON Schema's (ECMA-262, searched, so they carry their anchors), run with
   the flag an <input pattern> uses (v, else u): code points, as the server counts them. The
   form is novalidate, so these messages, not the browser's own bubbles, say what is wrong.
   <pre id="input-json"> follows the fields: the input that will be sent (a field left empty,
   or a box not ticked, is left out, as bisonflow.schemas.workflow_input leaves it out), and
   nothing while a field is refused. */
(function () {
  "use strict";
  var form = document.getElementById("start-form");
  if (!form) {
    return;
  }
  var flag = (function () {
    try {
      new RegExp("", "v");
      return "v";
    } catch (e) {
      return "u";
    }
  })();

  function problem(input) {
    if (!input.dataset.pattern || input.value === "") {
      return "";
    }
    if (new RegExp(input.dataset.pattern, flag).test(input.value)) {
      return "";
    }
    return JSON.stringify(input.value) + " is refused: expected " + input.dataset.description;
  }

  function check(input) {
    var message = problem(input);
    var shown = document.getElementById(input.id + "-problem");
    if (shown) {
      shown.textContent = message;
    }
    input.setAttribute("aria-invalid", message ? "true" : "false");
    return message === "";
  }

  function preview() {
    var out = document.getElementById("input-json");
    if (!out) {
      return;
    }
    var refused = false;
    form.querySelectorAll("input[data-input][data-pattern]").forEach(function (input) {
      refused = refused || problem(input) !== "";
    });
    if (refused) {
      // As the server shows it: nothing would be sent while a field is refused.
      out.textContent = "";
      return;
    }
    var payload = {};
    form.querySelectorAll("input[data-input]").forEach(function (input) {
      if (input.type === "checkbox") {
        if (input.checked) {
          payload[input.name] = true;
        }
      } else if (input.value !== "") {
        payload[input.name] = input.value;
      }
    });
    out.textContent = JSON.stringify(payload, null, 2);
  }

  var checked = form.querySelectorAll("input[data-pattern]");
  checked.forEach(function (input) {
    input.addEventListener("change", function () {
      check(input);
    });
    input.addEventListener("input", function () {
      // While typing, only clear a message the value no longer deserves.
      if (input.getAttribute("aria-invalid") === "true") {
        check(input);
      }
    });
    if (problem(input)) {
      // A pre-filled value (?month=) is judged at once; the server's own message is kept.
      check(input);
    }
  });
  form.addEventListener("input", preview);
  form.addEventListener("change", preview);
  form.addEventListener("submit", function (ev) {
    var first = null;
    checked.forEach(function (input) {
      if (!check(input) && first === null) {
        first = input;
      }
    });
    preview();
    if (first !== null) {
      ev.preventDefault();
      first.focus();
    }
  });
})();
