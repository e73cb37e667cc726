"""Which polygon holds a point, and how far the point is from any polygon edge, in numpy.

The sample places records at pool points that must be unambiguously inside one county (and
inside or outside each AIANNH area): at least a margin away from every edge, so that the
workflow's ST_Covers on the same polygons cannot disagree with the sample, whatever it does
on boundaries. The test is planar in degrees, as the workflow's (EPSG:4269 coordinates with
planar predicates): even-odd crossing over all rings of a polygon (exterior rings, holes and
islands alike, as the shapefile stores them), and the distance to the nearest segment.
Deliberately not DuckDB: the sample's tests check these points against DuckDB spatial, an
independent implementation, and numpy over the candidates is several times faster.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Rings = list[npt.NDArray[np.float64]]
#: Point x segment pairs evaluated at once (memory: a few arrays of this many doubles).
_BLOCK = 1 << 20


@dataclass(frozen=True)
class Layer:
    """Polygons as segment arrays: polygon i's segments are [starts[i], starts[i + 1]),
    ring j's are [ring_starts[j], ring_starts[j + 1]) and belong to polygon ring_polygon[j]."""

    x0: np.ndarray
    y0: np.ndarray
    x1: np.ndarray
    y1: np.ndarray
    starts: np.ndarray
    box: np.ndarray  # (n, 4): xmin, ymin, xmax, ymax
    ring_starts: np.ndarray
    ring_polygon: np.ndarray

    def __len__(self) -> int:
        return self.box.shape[0]

    def ring_boxes(self) -> np.ndarray:
        """(rings, 4): each ring's xmin, ymin, xmax, ymax."""
        return _boxes(self, self.ring_starts)

    def polygon_of_segment(self) -> np.ndarray:
        return np.repeat(np.arange(len(self)), np.diff(self.starts))


def layer(polygons: list[Rings]) -> Layer:
    """The segments of every ring of every polygon (a ring's last point closes it).
    Every polygon must have a ring (the layers here have no null shapes)."""
    rings = [ring for shape in polygons for ring in shape]
    xy = np.concatenate(rings)
    sizes = np.array([len(ring) for ring in rings], dtype=np.int64)
    last = np.cumsum(sizes) - 1  # a ring's closing point starts no segment
    first = np.ones(len(xy), dtype=bool)
    first[last] = False
    x0, y0 = xy[:-1, 0][first[:-1]], xy[:-1, 1][first[:-1]]
    x1, y1 = xy[1:, 0][first[:-1]], xy[1:, 1][first[:-1]]
    ring_starts = np.zeros(len(rings) + 1, dtype=np.int64)
    np.cumsum(sizes - 1, out=ring_starts[1:])
    ring_polygon = np.repeat(np.arange(len(polygons)), [len(shape) for shape in polygons])
    starts = np.zeros(len(polygons) + 1, dtype=np.int64)
    np.cumsum(np.bincount(ring_polygon, weights=sizes - 1, minlength=len(polygons)), out=starts[1:])
    out = Layer(x0, y0, x1, y1, starts, np.empty((0, 4)), ring_starts, ring_polygon)
    return Layer(x0, y0, x1, y1, starts, _boxes(out, starts), ring_starts, ring_polygon)


def _boxes(poly: Layer, starts: np.ndarray) -> np.ndarray:
    at = starts[:-1]
    return np.stack(
        [
            np.minimum.reduceat(poly.x0, at),
            np.minimum.reduceat(poly.y0, at),
            np.maximum.reduceat(poly.x0, at),
            np.maximum.reduceat(poly.y0, at),
        ],
        axis=1,
    )


def locate(
    poly: Layer, x: np.ndarray, y: np.ndarray, margin: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(index of the lowest-numbered polygon holding each point, -1 for none; how many
    polygons hold it; whether it is within `margin` of an edge of any polygon)."""
    found = np.full(x.size, -1, dtype=np.int64)
    holders = np.zeros(x.size, dtype=np.int64)
    near = np.zeros(x.size, dtype=bool)
    order = np.argsort(x, kind="stable")
    xs = x[order]
    for i in range(len(poly)):
        xmin, ymin, xmax, ymax = poly.box[i]
        lo, hi = np.searchsorted(xs, [xmin - margin, xmax + margin], side="left")
        cand = order[lo:hi]
        cand = cand[(y[cand] >= ymin - margin) & (y[cand] <= ymax + margin)]
        if cand.size == 0:
            continue
        inside, close = _test(poly, i, x[cand], y[cand], margin)
        found[cand[inside & (found[cand] < 0)]] = i
        holders[cand[inside]] += 1
        near[cand[close]] = True
    return found, holders, near


def well_inside(
    poly: Layer, owner: np.ndarray, x: np.ndarray, y: np.ndarray, margin: float
) -> np.ndarray:
    """Whether each point is inside polygon owner[i] and more than `margin` from its edges.

    Only the owner is tested (fast, one polygon per point); where polygons may overlap,
    `locate` the survivors too."""
    ok = np.zeros(x.size, dtype=bool)
    order = np.argsort(owner, kind="stable")
    bounds = np.searchsorted(owner[order], np.arange(len(poly) + 1))
    for i in range(len(poly)):
        cand = order[bounds[i] : bounds[i + 1]]
        if cand.size:
            inside, close = _test(poly, i, x[cand], y[cand], margin)
            ok[cand] = inside & ~close
    return ok


def _test(
    poly: Layer, i: int, px: np.ndarray, py: np.ndarray, margin: float
) -> tuple[np.ndarray, np.ndarray]:
    """Even-odd inside, and within-margin, of points against polygon i, in blocks.

    Each point x segment pair costs a few comparisons; the arithmetic is done only for the
    few pairs that pass them (segments spanning the point's latitude; segments whose box,
    grown by the margin, holds the point)."""
    a, b = poly.starts[i], poly.starts[i + 1]
    step = max(1, _BLOCK // max(1, b - a))
    inside = np.zeros(px.size, dtype=bool)
    close = np.zeros(px.size, dtype=bool)
    x0, y0, x1, y1 = poly.x0[a:b], poly.y0[a:b], poly.x1[a:b], poly.y1[a:b]
    dx, dy = x1 - x0, y1 - y0
    length2 = np.where(dx * dx + dy * dy > 0, dx * dx + dy * dy, 1.0)
    lox, hix = np.minimum(x0, x1) - margin, np.maximum(x0, x1) + margin
    loy, hiy = np.minimum(y0, y1) - margin, np.maximum(y0, y1) + margin
    for s in range(0, px.size, step):
        qx, qy = px[s : s + step], py[s : s + step]
        m = qx.size
        row, seg = np.nonzero((y0 > qy[:, None]) != (y1 > qy[:, None]))
        at = x0[seg] + (qy[row] - y0[seg]) * dx[seg] / dy[seg]
        crossings = np.bincount(row[qx[row] < at], minlength=m)
        inside[s : s + step] = crossings % 2 == 1
        row, seg = np.nonzero(
            (qx[:, None] >= lox)
            & (qx[:, None] <= hix)
            & (qy[:, None] >= loy)
            & (qy[:, None] <= hiy)
        )
        t = np.clip(
            ((qx[row] - x0[seg]) * dx[seg] + (qy[row] - y0[seg]) * dy[seg]) / length2[seg], 0, 1
        )
        ex, ey = x0[seg] + t * dx[seg] - qx[row], y0[seg] + t * dy[seg] - qy[row]
        close[s : s + step] = (
            np.bincount(row[ex * ex + ey * ey <= margin * margin], minlength=m) > 0
        )
    return inside, close
