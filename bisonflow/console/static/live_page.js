/* The console's execution page: says the execution's status on <body> (the page's tests and
   styles read it) and, while it runs, follows live.json with live.js, the report's own
   updater (bisonflow/history/report/live.js). */
var BisonConsole = (function () {
  "use strict";
  function follow(url, intervalMs, status) {
    document.body.dataset.executionStatus = status;
    if (status === "RUNNING") BisonLive.follow(url, intervalMs);
  }
  return { follow: follow };
})();
