"""The month's figures and maps in report.html, so the science of a run is one click away.

calc_stats writes them as PNG files under the execution's run folder and names that prefix
in its step output (`calc_stats.summary_prefix`); once PublishMonth made the run the month
(bisonflow.steps.publish), `bisonflow run` copies the published month, that folder included, into
the run record's outputs/ (keys kept as paths). The report shows those copies by
relative links, so the page stays one file that loads nothing from the network and the
images stay where the record keeps them. A console serving the same page (issue 15) passes
its own URLs to `figures_section` instead.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bisonflow.history.execution_view import ExecutionView

#: (file name, URL relative to the page)
Figure = tuple[str, str]
#: Published images by the first word of their name: figures first, then maps.
_KINDS = ("figure", "map")


def summary_prefix(view: ExecutionView) -> str | None:
    """The prefix the month's outputs were published under, from the execution's output;
    None when the execution published nothing (it failed, was skipped, or still runs)."""
    try:
        output: Any = json.loads(view.output or "null")
    except ValueError:
        return None
    stats = output.get("calc_stats") if isinstance(output, dict) else None
    prefix = stats.get("summary_prefix") if isinstance(stats, dict) else None
    return prefix if isinstance(prefix, str) and prefix else None


def month_figures(view: ExecutionView, outputs: Path, page_dir: Path) -> list[Figure]:
    """The month's PNG figures and maps copied under `outputs`, linked relative to the page."""
    prefix = summary_prefix(view)
    folder = Path(outputs) / prefix if prefix else None
    if folder is None or not folder.is_dir():
        return []
    found = {p.name: p for p in folder.glob("*.png")}
    return [
        (name, quote(Path(os.path.relpath(found[name], page_dir)).as_posix()))
        for name in in_report_order(found)
    ]


def in_report_order(names: Iterable[str]) -> list[str]:
    """Image file names (or keys) as the gallery shows them: figures, then maps, each by name."""
    return sorted(names, key=lambda n: (_rank(n.rsplit("/", 1)[-1]), n))


def _rank(name: str) -> int:
    kind = name.split("_", 1)[0]
    return _KINDS.index(kind) if kind in _KINDS else len(_KINDS)


def caption(name: str) -> str:
    """`map_richness_county.png` -> `Map: richness county`."""
    kind, _, rest = Path(name).stem.partition("_")
    return f"{kind.capitalize()}: {rest.replace('_', ' ')}" if rest else kind


def figures_section(view: ExecutionView, figures: list[Figure]) -> str:
    """A gallery of the month's figures and maps, each a link to the full-size image; a line
    saying why there is none when the execution published nothing."""
    prefix = summary_prefix(view)
    if not figures:
        why = (
            f"this record holds no copy of {prefix} (write the report with the run record's "
            "outputs/ folder)"
            if prefix
            else "this execution published no month (it did not reach CalcStats)"
        )
        return (
            '<section id="figures"><h2>Figures and maps</h2>'
            f'<p class="muted">None shown: {escape(why)}.</p></section>'
        )
    items = "".join(
        f'<figure><a href="{escape(href)}" target="_blank" rel="noopener">'
        f'<img src="{escape(href)}" alt="{escape(caption(name))}" loading="lazy"></a>'
        f"<figcaption>{escape(caption(name))}</figcaption></figure>"
        for name, href in figures
    )
    return (
        f'<section id="figures"><h2>Figures and maps</h2><p class="muted">The month\'s '
        f"published images ({escape(prefix or '')}), copied into this run record; click one "
        f'for its full size.</p><div class="gallery">{items}</div></section>'
    )
