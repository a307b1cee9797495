"""Markdown/HTML pages with figures for a run."""

from __future__ import annotations

from pathlib import Path

from ..files import atomic_write
from .energy import energy_rows
from .neurobench import neurobench_line
from .plots import FIGURES
from .summary import RunSummary
from .tables import markdown_table


def write_report(summary: RunSummary | dict, out_dir: str | Path, *,
                 html: bool = False) -> Path:
    """Write ``report.md`` (or ``report.html``) and its PNG figures into ``out_dir``.

    ``summary`` is a :class:`RunSummary` or what ``lava-convert run --json`` writes
    (an ``InputError`` names what it lacks). Returns the page's path.
    """
    if not isinstance(summary, RunSummary):
        summary = RunSummary.from_dict(summary)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = []
    for name, (draw, title) in FIGURES.items():
        path = draw(summary, out / f"{name}.png")
        if path is not None:
            figures.append((title, path.name))
    acc = f"{100 * summary.accuracy:.2f} % on {summary.samples} samples"
    if summary.ann_accuracy is not None:
        on = (f"{summary.ann_samples} samples" if summary.ann_samples is not None
              else "an unknown number of samples")
        acc += f" (the ANN: {100 * summary.ann_accuracy:.2f} % on {on}, from the export"
        acc += "" if summary.ann_samples == summary.samples else "; not the same samples"
        acc += ")"
    parts = [f"# Run report: {summary.network or 'network'}", "",
             f"Backend **{summary.backend}**, {summary.samples} samples of "
             f"{summary.dataset or 'the data'}, T = {summary.timesteps}: accuracy {acc}.", ""]
    layer_rows = [[l.name, l.kind, l.neurons, l.spikes_per_sample, l.rate,
                   None if l.rate_correlation is None else f"{l.rate_correlation:.4f}",
                   None if l.rate_error_quantization is None
                   else f"{l.rate_error_quantization:.4f}"] for l in summary.layers]
    parts += ["## Layers", "", markdown_table(
        ["layer", "kind", "neurons", "spikes/sample", "rate (spikes/step)",
         "ANN-SNN correlation", "quantization error"], layer_rows), ""]
    cost = summary.cost
    if cost:
        rows = [[c["name"], c["spikes"], f"{c['synops']:.0f}", c["neuron_updates"],
                 c["ann_macs"]] for c in cost["layers"]]
        parts += ["## Cost per sample", "", markdown_table(
            ["layer", "spikes", "synaptic ops", "neuron updates", "ANN MACs"], rows), ""]
        if "energy" in cost:
            parts += ["## Energy per sample (estimates)", "", markdown_table(
                ["figure", "uJ", "what it counts"], energy_rows(cost["energy"])), ""]
        else:  # a summary written before the estimate had its parts
            parts += [f"Energy per sample, an **{cost['energy_note']}**: SNN on Loihi "
                      f"{1e6 * cost['snn_energy_j']:.3f} uJ, ANN "
                      f"{1e6 * cost['ann_energy_j']:.3f} uJ.", ""]
    if summary.neurobench:
        parts += ["## NeuroBench metrics", "", f"NeuroBench {neurobench_line(summary.neurobench)}.",
                  ""]
    for title, name in figures:
        parts += [f"## {title}", "", f"![{title}]({name})", ""]
    if summary.accuracy_per_step is None:
        parts += ["No accuracy-vs-T figure: this backend records the class only at the end "
                  "of each sample; `lava-convert sweep` (reference simulator) gives the "
                  "accuracy after every step.", ""]
    text = "\n".join(parts)
    if not html:
        return atomic_write(out / "report.md", lambda tmp: tmp.write_text(text))
    page = _to_html(text)
    return atomic_write(out / "report.html", lambda tmp: tmp.write_text(page))


def _to_html(markdown: str) -> str:
    """The small Markdown subset :func:`write_report` emits, as a standalone HTML page."""
    import html
    import re

    body, table = [], []

    def flush() -> None:
        if table:
            head, *rows = [[c.strip() for c in r.strip("|").split("|")] for r in table
                           if not r.startswith("|---")]
            body.append("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in head)
                        + "</tr>" + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>"
                                                             for c in r) + "</tr>" for r in rows)
                        + "</table>")
            table.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        if m := re.match(r"!\[(.*)\]\((.*)\)", line):
            body.append(f'<img alt="{html.escape(m[1])}" src="{html.escape(m[2])}">')
        elif line.startswith("## "):
            body.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line:
            text = html.escape(line)
            body.append("<p>" + re.sub(r"\*\*(.*?)\*\*", r"<b>\1</b>", text) + "</p>")
    flush()
    return ("<!doctype html><html><head><meta charset='utf-8'><title>lava-convert report"
            "</title><style>body{font-family:sans-serif;max-width:60em;margin:auto}"
            "td,th{padding:2px 8px;text-align:right}img{max-width:100%}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")
