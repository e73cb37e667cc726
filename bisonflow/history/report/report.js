(function () {
  "use strict";
  var svg = document.getElementById("state-graph");
  try {
    BisonGraph.layout(svg);
    BisonGraph.zoomable(svg, document.getElementById("graph-scroll"),
      document.querySelectorAll(".graph-tools [data-zoom]"));
  } catch (err) {
    // the details, timeline and events still work; say why the graph is missing
    var note = document.createElement("p");
    note.className = "error";
    note.textContent = "The graph could not be laid out: " + err;
    svg.parentNode.insertBefore(note, svg);
  }

  var details = document.querySelectorAll(".state-detail");
  var help = document.getElementById("detail-help");

  function show(name) {
    details.forEach(function (d) { d.hidden = d.dataset.detail !== name; });
    help.hidden = true;
    document.querySelectorAll("g.state").forEach(function (g) {
      g.classList.toggle("selected", g.dataset.state === name);
    });
  }
  document.querySelectorAll("g.state[data-state]").forEach(function (el) {
    el.addEventListener("click", function () { show(el.dataset.state); });
  });
  document.querySelectorAll("g.edge-label[data-source]").forEach(function (el) {
    el.addEventListener("click", function () { show(el.dataset.source); });
  });
  document.querySelectorAll(".tl-name[data-name]").forEach(function (el) {
    el.addEventListener("click", function () { show(el.dataset.name); });
  });

  var typeFilter = document.getElementById("filter-type");
  var stateFilter = document.getElementById("filter-state");
  var textFilter = document.getElementById("filter-text");
  var count = document.getElementById("filter-count");
  var rows = document.querySelectorAll("#events tbody tr");

  function filter() {
    var type = typeFilter.value, state = stateFilter.value;
    var text = textFilter.value.trim().toLowerCase();
    var shown = 0;
    rows.forEach(function (row) {
      var ok = (!type || row.dataset.type === type) &&
        (!state || row.dataset.owner === state) &&
        (!text || row.textContent.toLowerCase().indexOf(text) >= 0);
      row.hidden = !ok;
      if (ok) shown += 1;
    });
    count.textContent = shown + " of " + rows.length + " events";
  }
  [typeFilter, stateFilter].forEach(function (el) { el.addEventListener("change", filter); });
  textFilter.addEventListener("input", filter);
  filter();
})();
