/* A report page that follows its execution while it runs (the console's page of one execution).
 *
 * It polls a URL answering live.py's live_update: each state's status, type line and hover
 * text restyle the graph's node in place (the stylesheet colours it by data-status; the graph
 * is laid out again only when a node's text outgrew its box), and each data-live part's HTML
 * replaces that part. What the reader chose survives a replacement: the state shown in the
 * details, the event filters (values and focus). report.js listens on the document, so the
 * new content is clickable as the old was. After every update body's data-execution-status
 * is the execution's status and document receives a "bison:update" event; polling stops once
 * the execution no longer runs.
 */
var BisonLive = (function () {
  "use strict";
  var timer = null, generation = 0;  // a poll answered after stop() or a new follow() is dropped
  var shown = {};  // part name -> the HTML last put in, so an unchanged part is left alone

  function restyle(states) {
    var grew = false;
    Object.keys(states).forEach(function (name) {
      var state = states[name];
      document.querySelectorAll("g.state[data-state]").forEach(function (g) {
        if (g.dataset.state !== name) return;
        g.dataset.status = state.status;
        var title = g.querySelector("title");
        if (title) title.textContent = state.title;
        var line = g.querySelector("text.type"), status = line && line.querySelector("tspan.status");
        if (!status) return;
        var kind = state.label.slice(0, state.label.length - state.status.length);
        if (line.firstChild.nodeValue !== kind || status.textContent !== state.status) {
          line.firstChild.nodeValue = kind;
          status.textContent = state.status;
          grew = true;
        }
      });
    });
    var svg = BisonReport.graph;
    if (grew && svg && BisonGraph.overflows(svg)) BisonReport.relayout();
  }

  var FILTER_IDS = ["filter-type", "filter-state", "filter-text"];

  /* The filters' values and which of them has the focus (with the caret), to put back. */
  function keepFilters() {
    var kept = { values: {}, focus: null };
    FILTER_IDS.forEach(function (id) {
      var el = document.getElementById(id);
      if (el) kept.values[id] = el.value;
    });
    var active = document.activeElement;
    if (active && FILTER_IDS.indexOf(active.id) >= 0) {
      kept.focus = { id: active.id, start: active.selectionStart, end: active.selectionEnd };
    }
    return kept;
  }

  function restoreFilters(kept) {
    Object.keys(kept.values).forEach(function (id) {
      var el = document.getElementById(id);
      if (el) el.value = kept.values[id];
    });
    if (kept.focus) {
      var el = document.getElementById(kept.focus.id);
      if (el && document.activeElement !== el) {
        el.focus();
        if (kept.focus.start !== null && el.setSelectionRange) {
          el.setSelectionRange(kept.focus.start, kept.focus.end);
        }
      }
    }
  }

  function replaceParts(parts) {
    var kept = keepFilters();
    Object.keys(parts).forEach(function (name) {
      if (shown[name] === parts[name]) return;
      document.querySelectorAll("[data-live]").forEach(function (el) {
        if (el.dataset.live === name) el.innerHTML = parts[name];
      });
      shown[name] = parts[name];
    });
    restoreFilters(kept);
    BisonReport.show(BisonReport.selected());
    BisonReport.filter();
  }

  /* Apply one live_update to the page. */
  function update(data) {
    restyle(data.states || {});
    replaceParts(data.parts || {});
    document.body.dataset.executionStatus = data.status;
    document.dispatchEvent(new CustomEvent("bison:update", { detail: data }));
  }

  function stop() {
    generation += 1;
    if (timer !== null) clearTimeout(timer);
    timer = null;
    document.body.dataset.following = "stopped";
  }

  /* Poll `url` (same origin) now and then every intervalMs while the execution runs. A failed
   * request is said in body's data-live-error and tried again at the next interval. */
  function follow(url, intervalMs) {
    stop();
    var delay = intervalMs || 1000, mine = generation;
    document.body.dataset.following = "running";
    function next() { timer = setTimeout(poll, delay); }
    function poll() {
      timer = null;
      fetch(url, { credentials: "same-origin", cache: "no-store",
        headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) throw new Error(url + " answered HTTP " + response.status);
          return response.json();
        })
        .then(function (data) {
          if (mine !== generation) return;
          delete document.body.dataset.liveError;
          update(data);
          if (data.running) next(); else stop();
        })
        .catch(function (err) {
          if (mine !== generation) return;
          document.body.dataset.liveError = String(err);
          next();
        });
    }
    poll();
  }

  return { follow: follow, update: update, stop: stop };
})();
