/* The report's behaviour: the graph's layout and zoom, the state details, the event filters.
 *
 * A live page (live.js) replaces the sections' HTML while the execution runs, so nothing here
 * holds on to an element of them: clicks and filter changes are caught on the document, and
 * every function looks its elements up when it runs. BisonReport is what live.js calls.
 */
var BisonReport = (function () {
  "use strict";
  var svg = document.getElementById("state-graph");
  var zoom = null;
  try {
    BisonGraph.layout(svg);
    zoom = BisonGraph.zoomable(svg, document.getElementById("graph-scroll"),
      document.querySelectorAll(".graph-tools [data-zoom]"));
  } catch (err) {
    // the details, timeline and events still work; say why the graph is missing
    var note = document.createElement("p");
    note.className = "error";
    note.textContent = "The graph could not be laid out: " + err;
    svg.parentNode.insertBefore(note, svg);
  }

  var selected = null;

  /* Show one state's details and mark its node; show(null) shows none. */
  function show(name) {
    selected = name;
    document.querySelectorAll(".state-detail").forEach(function (d) {
      d.hidden = d.dataset.detail !== name;
    });
    var help = document.getElementById("detail-help");
    if (help) help.hidden = name !== null;
    document.querySelectorAll("g.state").forEach(function (g) {
      g.classList.toggle("selected", g.dataset.state === name);
    });
  }

  /* The state a click names: a graph node, a rule's label (its Choice), a timeline row. */
  var TARGETS = [["g.state[data-state]", "state"], ["g.edge-label[data-source]", "source"],
    [".tl-name[data-name]", "name"]];
  document.addEventListener("click", function (ev) {
    if (!(ev.target instanceof Element)) return;
    for (var i = 0; i < TARGETS.length; i++) {
      var el = ev.target.closest(TARGETS[i][0]);
      if (el) { show(el.dataset[TARGETS[i][1]]); return; }
    }
  });

  function byId(id) { return document.getElementById(id); }

  /* Show the event rows the filters let through, and count them. */
  function filter() {
    var typeFilter = byId("filter-type"), stateFilter = byId("filter-state");
    var textFilter = byId("filter-text"), count = byId("filter-count");
    if (!typeFilter || !stateFilter || !textFilter) return;
    var type = typeFilter.value, state = stateFilter.value;
    var text = textFilter.value.trim().toLowerCase();
    var rows = document.querySelectorAll("#events tbody tr");
    var shown = 0;
    rows.forEach(function (row) {
      var ok = (!type || row.dataset.type === type) &&
        (!state || row.dataset.owner === state) &&
        (!text || row.textContent.toLowerCase().indexOf(text) >= 0);
      row.hidden = !ok;
      if (ok) shown += 1;
    });
    if (count) count.textContent = shown + " of " + rows.length + " events";
  }
  var FILTERS = { "filter-type": "change", "filter-state": "change", "filter-text": "input" };
  ["change", "input"].forEach(function (kind) {
    document.addEventListener(kind, function (ev) {
      if (ev.target && FILTERS[ev.target.id] === kind) filter();
    });
  });
  filter();

  /* Lay the graph out again (a node's text outgrew its box), keeping the zoom. */
  function relayout() {
    if (!zoom) return;
    BisonGraph.layout(svg);
    zoom.resize();
  }

  return {
    show: show,
    filter: filter,
    relayout: relayout,
    selected: function () { return selected; },
    graph: svg,
  };
})();
