"""Small HTML/SVG/Markdown builders for the KFP UI (no matplotlib in the step images)."""

from __future__ import annotations

import html
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")
WIDTH, HEIGHT, MARGIN = 480, 260, 44


def line_chart_svg(title: str, series: Mapping[str, Sequence[Tuple[float, float]]]) -> str:
    """An inline SVG line chart of one or more ``name -> [(x, y), ...]`` series."""
    points = [p for values in series.values() for p in values]
    if not points:
        return f"<p>{html.escape(title)}: no data</p>"
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1

    def sx(x: float) -> float:
        return MARGIN + (x - x0) / (x1 - x0) * (WIDTH - 2 * MARGIN)

    def sy(y: float) -> float:
        return HEIGHT - MARGIN - (y - y0) / (y1 - y0) * (HEIGHT - 2 * MARGIN)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{html.escape(title)}">',
        f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" font-size="14">'
        f"{html.escape(title)}</text>",
        f'<line x1="{MARGIN}" y1="{HEIGHT - MARGIN}" x2="{WIDTH - MARGIN}" '
        f'y2="{HEIGHT - MARGIN}" stroke="#888"/>',
        f'<line x1="{MARGIN}" y1="{MARGIN}" x2="{MARGIN}" y2="{HEIGHT - MARGIN}" stroke="#888"/>',
        f'<text x="{MARGIN}" y="{HEIGHT - MARGIN + 16}" font-size="11">{x0:g}</text>',
        f'<text x="{WIDTH - MARGIN}" y="{HEIGHT - MARGIN + 16}" font-size="11" '
        f'text-anchor="end">{x1:g} (epoch)</text>',
        f'<text x="{MARGIN - 4}" y="{HEIGHT - MARGIN}" font-size="11" text-anchor="end">'
        f"{y0:.3g}</text>",
        f'<text x="{MARGIN - 4}" y="{MARGIN + 4}" font-size="11" text-anchor="end">{y1:.3g}</text>',
    ]
    for index, (name, values) in enumerate(series.items()):
        color = COLORS[index % len(COLORS)]
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in values)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{coords}"/>')
        parts.append(
            f'<text x="{WIDTH - MARGIN}" y="{MARGIN + 14 * index}" font-size="11" '
            f'text-anchor="end" fill="{color}">{html.escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _series(rows: List[Dict[str, float]], key: str) -> List[Tuple[float, float]]:
    return [(row["epoch"], row[key]) for row in rows if row.get(key) is not None]


def readable(value: object) -> str:
    """A figure as people read it: 4 decimals for fractions, thousands separators for counts."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def training_report_html(
    title: str, rows: List[Dict[str, float]], summary: Dict[str, object]
) -> str:
    """An HTML page with accuracy and loss curves from training.csv plus a summary table."""
    table = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(readable(v))}</td></tr>"
        for k, v in summary.items()
    )
    accuracy = line_chart_svg(
        "Accuracy", {"train": _series(rows, "acc"), "validation": _series(rows, "val_acc")}
    )
    loss = line_chart_svg(
        "Loss", {"train": _series(rows, "loss"), "validation": _series(rows, "val_loss")}
    )
    lr = line_chart_svg("Learning rate", {"lr": _series(rows, "lr")})
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "</head><body style='font-family:sans-serif'>"
        f"<h2>{html.escape(title)}</h2><table>{table}</table>"
        f"<div>{accuracy}{loss}</div><div>{lr}</div></body></html>"
    )


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table; pipes in cells are escaped."""

    def cell(value: object) -> str:
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_text(artifact, text: str, metadata: Optional[Dict[str, object]] = None) -> None:
    """Writes ``text`` to a kfp artifact's path (skipped when the artifact is None)."""
    if artifact is None:
        return
    from pathlib import Path

    Path(artifact.path).parent.mkdir(parents=True, exist_ok=True)
    Path(artifact.path).write_text(text, encoding="utf-8")
    if metadata:
        artifact.metadata.update(metadata)
