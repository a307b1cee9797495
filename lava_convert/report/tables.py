"""Aligned text tables (the CLI, the demo and the reports print these)."""

from __future__ import annotations


def format_table(header: list[str], rows: list[list[object]]) -> str:
    """Align ``rows`` under ``header`` (first column left, the rest right-aligned)."""
    cells = [[str(c) for c in header]] + [[format_cell(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def line(r: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(r, widths)))

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule] + [line(r) for r in cells[1:]])


def format_cell(value: object) -> str:
    """``-`` for None, two decimals for floats, ``str`` otherwise."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    """The same rows as a Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(format_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
