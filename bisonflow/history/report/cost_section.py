"""report.html's "Estimated AWS cost" section: the lines of `bisonflow.history.cost`, each with its
quantity, unit price and the price's source, under a heading that says it is an estimate
(no bill is read; see bisonflow.history.cost for what is counted and what is left out)."""

from __future__ import annotations

from html import escape

from bisonflow.history.cost import PRICES_AS_OF, CostEstimate

__all__ = ["cost_section"]


def _money(value: float | None) -> str:
    return "no price given" if value is None else f"${value:.6f}"


def cost_section(estimate: CostEstimate) -> str:
    rows = "".join(
        "<tr>"
        f"<td>{escape(line.service)}</td><td>{escape(line.item)}</td>"
        f'<td class="num">{line.quantity:,.4f} {escape(line.unit)}</td>'
        f"<td>{escape(line.price_text)}</td>"
        f'<td class="num">{escape(_money(line.cost))}</td>'
        f'<td class="muted">{escape(line.basis)}<br>price: {escape(line.source)}</td>'
        "</tr>"
        for line in estimate.lines
    )
    unpriced = sorted({f"{line.service} ({line.unit})" for line in estimate.unpriced})
    missing = (
        f" Not priced (no published price found; give one): {escape(', '.join(unpriced))}."
        if unpriced
        else ""
    )
    return (
        '<section id="cost"><h2>Estimated AWS cost</h2>'
        f'<p class="muted">An <b>estimate</b> from this execution\'s history (and logs, where '
        f"given), at US East prices as published on {PRICES_AS_OF}; not a bill. Left out: S3, "
        "CloudWatch Logs, EBS, data transfer, the Glue Data Catalog and free tiers.</p>"
        '<table class="cost"><thead><tr><th>service</th><th>what</th><th>quantity</th>'
        "<th>unit price</th><th>cost</th><th>from</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        f"<p>Total of the priced lines: <b>{escape(_money(estimate.total))}</b>.{missing}</p>"
        "</section>"
    )
