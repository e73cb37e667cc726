/* What every console page shares: a form with data-confirm asks before it posts (stop, redrive,
   fire the schedule: actions that cannot be taken back). */
(function () {
  "use strict";
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      ev.preventDefault();
    }
  });
})();
