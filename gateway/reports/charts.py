"""Charts for the HTML/PDF report: matplotlib's object API (no global pyplot state), SVG out."""

from __future__ import annotations

import base64
import io

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from gateway.reports.model import Count, GovernanceReport

INK = "#1f3a5f"
ACCENT = "#c8553d"


def _bar_chart(
    title: str, items: list[tuple[str, float]], *, xlabel: str, color: str, counts: bool = True
) -> str:
    """A horizontal bar chart as a data: URI (SVG, text drawn as paths: no font needed)."""
    height = 0.6 + 0.32 * max(1, len(items))
    figure = Figure(figsize=(6.2, height), dpi=100)
    axes = figure.add_subplot()
    labels = [k for k, _ in items][::-1]
    values = [v for _, v in items][::-1]
    bars = axes.barh(labels, values, color=color)
    axes.bar_label(bars, labels=[_fmt(v) for v in values], padding=3, fontsize=8)
    axes.set_title(title, fontsize=10, loc="left")
    axes.set_xlabel(xlabel, fontsize=8)
    axes.tick_params(labelsize=8)
    axes.spines[["top", "right"]].set_visible(False)
    if counts:
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlim(min([*values, 0.0]) * 1.18, max([*values, 1e-9]) * 1.18)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


def _fmt(value: float) -> str:
    return f"{int(value)}" if float(value).is_integer() else f"{value:.2f}"


def _counts(items: list[Count], limit: int = 15) -> list[tuple[str, float]]:
    return [(c.key, float(c.count)) for c in items[:limit]]


def charts(report: GovernanceReport) -> dict[str, str]:
    """Only charts that have data; the template prints 'nothing recorded yet' otherwise."""
    found: dict[str, str] = {}
    red = report.redaction
    if red.regions_recorded:
        found["regions"] = _bar_chart(
            "Regions redacted per label (every redaction run)",
            _counts(red.regions_recorded),
            xlabel="regions",
            color=INK,
        )
    if red.assets_by_state:
        found["states"] = _bar_chart(
            "Assets by state", _counts(red.assets_by_state), xlabel="assets", color=INK
        )
    quality = report.annotation_quality
    if quality is not None and quality.per_annotator:
        found["annotators"] = _bar_chart(
            "Annotations per annotator (pseudonyms)",
            _counts(quality.per_annotator),
            xlabel="annotations",
            color=ACCENT,
        )
    if quality is not None:
        scores = [
            (name, float(value))
            for name, value in (
                ("box F1 (IoU >= " + quality.iou_threshold + ")", quality.box_f1),
                ("mean IoU of matched boxes", quality.box_mean_iou),
                ("Cohen's kappa, box labels", quality.box_label_kappa),
                ("Krippendorff's alpha, choices", quality.choice_alpha),
            )
            if value is not None
        ]
        if scores:
            found["agreement"] = _bar_chart(
                "Inter-annotator agreement",
                scores,
                xlabel="score (1 = perfect)",
                color=ACCENT,
                counts=False,
            )
    return found
