/* The console's execution page: says the execution's status on <body> (the page's tests and
   styles read it) and, while it runs, follows live.json with live.js, the report's own
   updater (bisonflow/history/report/live.js). */
var BisonConsole = (function () {
  "use strict";
  function follow(url, intervalMs, status) {
    document.body.dataset.executionStatus = status;
    document.body.dataset.updates = "0";  // how many live updates the page has taken
    document.addEventListener("bison:update", function () {
      document.body.dataset.updates = String(Number(document.body.dataset.updates) + 1);
    });
    if (status === "RUNNING") BisonLive.follow(url, intervalMs);
  }
  return { follow: follow };
})();
