/* The state graph's layout and zoom (report.html, and any page drawing the same SVG).
 *
 * html.py writes every node, edge, label and branch box unplaced. Here each box is sized to
 * its text as this browser draws it, then dagre places them top to bottom. Edge labels are
 * given to dagre with their size, so it reserves a place for each between the ranks and no
 * label lands on a node or another label; a branch box gets its caption as a node of its own
 * inside it, so the box is at least as wide as its caption.
 */
var BisonGraph = (function () {
  "use strict";
  var PAD_X = 14, NODE_H = 44, MARKER_H = 28, LABEL_PAD = 3, CAPTION_H = 18;

  function textWidth(g) {
    var widest = 0;
    g.querySelectorAll("text").forEach(function (t) { widest = Math.max(widest, t.getBBox().width); });
    return widest;
  }

  function place(el, x, y) { el.setAttribute("transform", "translate(" + x + "," + y + ")"); }

  function box(rect, w, h) {
    rect.setAttribute("x", -w / 2); rect.setAttribute("y", -h / 2);
    rect.setAttribute("width", w); rect.setAttribute("height", h);
  }

  /* A path through dagre's points, smoothed with quadratic segments through their midpoints. */
  function pathOf(points) {
    var d = "M" + points[0].x + "," + points[0].y;
    if (points.length === 2) return d + " L" + points[1].x + "," + points[1].y;
    for (var i = 1; i < points.length - 1; i++) {
      var c = points[i], n = points[i + 1];
      var end = i === points.length - 2 ? n : { x: (c.x + n.x) / 2, y: (c.y + n.y) / 2 };
      d += " Q" + c.x + "," + c.y + " " + end.x + "," + end.y;
    }
    return d;
  }

  function layout(svg) {
    var g = new dagre.graphlib.Graph({ compound: true, multigraph: true });
    g.setGraph({ rankdir: "TB", nodesep: 16, ranksep: 28, edgesep: 8, marginx: 6, marginy: 12 });
    g.setDefaultEdgeLabel(function () { return {}; });
    var nodes = {};
    svg.querySelectorAll("g.nodes > g[data-node]").forEach(function (el) {
      var marker = el.classList.contains("marker");
      var w = Math.max(marker ? 64 : 100, textWidth(el) + 2 * PAD_X);
      var h = marker ? MARKER_H : NODE_H;
      box(el.querySelector("rect"), w, h);
      nodes[el.dataset.node] = el;
      g.setNode(el.dataset.node, { width: w, height: h });
    });
    var clusters = {};
    svg.querySelectorAll("g.branch-group").forEach(function (el) {
      var id = "cluster:" + el.dataset.cluster, caption = "caption:" + el.dataset.cluster;
      clusters[id] = el;
      g.setNode(id, {});
      g.setNode(caption, { width: textWidth(el) + 16, height: CAPTION_H });
      g.setParent(caption, id);
      g.setEdge(caption, el.dataset.start, { weight: 4 }, "caption");
    });
    svg.querySelectorAll("g.nodes > g[data-branch]").forEach(function (el) {
      g.setParent(el.dataset.node, "cluster:" + el.dataset.branch);
    });
    var labels = {};
    svg.querySelectorAll("g.labels > g[data-edge]").forEach(function (el) { labels[el.dataset.edge] = el; });
    var paths = svg.querySelectorAll("g.edges > path[data-edge]");
    paths.forEach(function (path) {
      var label = labels[path.dataset.edge], size = { width: 0, height: 0 };
      if (label) {
        var b = label.querySelector("text").getBBox();
        size = { width: b.width + 2 * LABEL_PAD, height: b.height + 2 * LABEL_PAD };
        var rect = label.querySelector("rect");
        rect.setAttribute("x", b.x - LABEL_PAD); rect.setAttribute("y", b.y - LABEL_PAD);
        rect.setAttribute("width", size.width); rect.setAttribute("height", size.height);
        size.dx = b.x + b.width / 2; size.dy = b.y + b.height / 2;  // the text's centre
      }
      g.setEdge(path.dataset.source, path.dataset.target,
        { width: size.width, height: size.height, labelpos: "c", at: size }, path.dataset.edge);
    });

    dagre.layout(g);

    Object.keys(nodes).forEach(function (name) { var n = g.node(name); place(nodes[name], n.x, n.y); });
    Object.keys(clusters).forEach(function (id) {
      var c = g.node(id), el = clusters[id], rect = el.querySelector("rect");
      var cap = g.node("caption:" + el.dataset.cluster);
      place(el, c.x, c.y);
      box(rect, c.width, c.height);
      var text = el.querySelector("text");
      text.setAttribute("x", cap.x - c.x); text.setAttribute("y", cap.y - c.y + 4);
    });
    paths.forEach(function (path) {
      var e = g.edge(path.dataset.source, path.dataset.target, path.dataset.edge);
      path.setAttribute("d", pathOf(e.points));
      var label = labels[path.dataset.edge];
      if (label) place(label, e.x - e.at.dx, e.y - e.at.dy);
    });
    // where a reader starts: the start marker (the first node html.py writes)
    var first = svg.querySelector("g.nodes > g[data-node]");
    if (first) svg.dataset.focusX = g.node(first.dataset.node).x;
    var size = g.graph();
    svg.setAttribute("viewBox", "0 0 " + size.width + " " + size.height);
    svg.dataset.width = size.width; svg.dataset.height = size.height;
    return size;
  }

  /* Zoom by buttons and Ctrl + wheel, pan by dragging; the scroll box shows the rest. */
  function zoomable(svg, scroller, buttons) {
    var W = +svg.dataset.width, H = +svg.dataset.height, scale = 1;
    function set(s) {
      scale = Math.min(3, Math.max(0.2, s));
      svg.setAttribute("width", W * scale); svg.setAttribute("height", H * scale);
      svg.dataset.scale = scale;
    }
    function fit() {
      return Math.min(1, (scroller.clientWidth - 4) / W, (scroller.clientHeight - 4) / H);
    }
    var actions = {
      "in": function () { set(scale * 1.25); }, out: function () { set(scale / 1.25); },
      fit: function () { set(fit()); }, reset: function () { set(1); },
    };
    buttons.forEach(function (b) { b.addEventListener("click", actions[b.dataset.zoom]); });
    scroller.addEventListener("wheel", function (ev) {
      if (!ev.ctrlKey) return;
      ev.preventDefault();
      set(scale * (ev.deltaY < 0 ? 1.1 : 1 / 1.1));
    }, { passive: false });
    var drag = null;
    scroller.addEventListener("mousedown", function (ev) {
      if (ev.target.closest("g.state, g.edge-label, button")) return;
      drag = { x: ev.clientX, y: ev.clientY, left: scroller.scrollLeft, top: scroller.scrollTop };
      scroller.classList.add("dragging");
    });
    window.addEventListener("mousemove", function (ev) {
      if (!drag) return;
      scroller.scrollLeft = drag.left - (ev.clientX - drag.x);
      scroller.scrollTop = drag.top - (ev.clientY - drag.y);
    });
    window.addEventListener("mouseup", function () { drag = null; scroller.classList.remove("dragging"); });
    set(1);  // actual size: the page's text sizes, readable; the scroll box pans the rest
    // a graph wider than the box opens with its start in view, not its left edge
    scroller.scrollLeft = Math.max(0, (+svg.dataset.focusX || 0) * scale - scroller.clientWidth / 2);
    /* after layout() ran again: the graph's new size, at the same zoom */
    function resize() { W = +svg.dataset.width; H = +svg.dataset.height; set(scale); }
    return { set: set, fit: fit, resize: resize };
  }

  /* Whether a node's text is now wider than the box layout() gave it (a live page changed
   * its type line, e.g. "Task · RUNNING" to "Task ×3 · SUCCEEDED"). */
  function overflows(svg) {
    return Array.prototype.some.call(svg.querySelectorAll("g.nodes > g[data-node]"), function (el) {
      return textWidth(el) + 2 * PAD_X > +el.querySelector("rect").getAttribute("width");
    });
  }

  return { layout: layout, zoomable: zoomable, overflows: overflows };
})();
