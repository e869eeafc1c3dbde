"""The report as one self-contained HTML file: styles inline, figures embedded as base64 PNG."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence

from emaudit.calibration.report_figures import NamedFigure
from emaudit.calibration.report_figures import png_bytes as figure_png
from emaudit.calibration.report_formats import to_html
from emaudit.calibration.report_methods import REFERENCES
from emaudit.calibration.report_tables import Table

_STYLE = """
body { font-family: Georgia, serif; max-width: 1400px; margin: 2em auto; padding: 0 1em; color: #111; }
h1, h2 { font-family: Helvetica, Arial, sans-serif; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }
caption { text-align: left; font-weight: bold; padding-bottom: 0.3em; }
thead th { border-top: 2px solid #000; border-bottom: 1px solid #000; padding: 0.3em 0.6em;
  text-align: left; }
tbody tr:last-child td { border-bottom: 2px solid #000; }
td { padding: 0.2em 0.6em; vertical-align: top; }
td.num { text-align: right; white-space: nowrap; }
td.txt { overflow-wrap: anywhere; min-width: 10em; max-width: 28em; }
td:first-child { min-width: 16em; }
.scroll { overflow-x: auto; }
p.note { font-size: 0.8em; color: #444; margin-top: -0.5em; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; }
figcaption { font-size: 0.85em; }
.banner { border: 2px solid #000; padding: 0.6em; font-weight: bold; }
"""


def png_bytes(figure: NamedFigure) -> bytes:
    """The figure as PNG (the same bytes go into ``figures/<name>.png`` and the HTML)."""
    return figure_png(figure.figure)


def render_html(
    title: str,
    tables: Sequence[Table],
    figures: Sequence[NamedFigure],
    methods: str,
    *,
    banner: str | None = None,
    notes: Sequence[str] = (),
    images: Mapping[str, bytes] | None = None,
) -> str:
    """One HTML page: banner, methods, the per-cell table first, then figures and the other tables.

    ``images`` maps figure names to PNG bytes already rendered; missing ones are rendered here.
    """
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if banner:
        parts.append(f'<p class="banner">{html.escape(banner)}</p>')
    parts.append(f"<h2>Methods</h2><p>{html.escape(methods)}</p>")
    by_name = {t.name: t for t in tables}
    if "cells" in by_name:
        parts.append("<h2>Per-cell rates</h2>" + to_html(by_name["cells"]))
    parts.append("<h2>Figures</h2>")
    for fig in figures:
        png = (images or {}).get(fig.name) or png_bytes(fig)
        parts.append(
            f'<figure id="figure-{html.escape(fig.name)}"><img alt="{html.escape(fig.caption)}" '
            f'src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}"><figcaption>{html.escape(fig.caption)}'
            "</figcaption></figure>"
        )
    parts.append("<h2>Tables</h2>")
    for table in tables:
        if table.name != "cells":
            parts.append(to_html(table))
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    parts.append("<h2>References</h2><ul>")
    parts.extend(f"<li>{html.escape(ref)}</li>" for ref in REFERENCES.values())
    parts.append("</ul></body></html>")
    return "\n".join(parts) + "\n"
