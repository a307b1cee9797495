"""What the verbs share: dataset and output flags, reading and writing JSON."""

from __future__ import annotations

import argparse
import json

DATA_HELP = ("digits (built in, default), mnist, fashion-mnist, or a path: a folder of the "
             "four IDX files or an .npz with x and y")


def dataset_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="digits", help=DATA_HELP)
    p.add_argument("--data-dir", default=None, help="directory of the IDX files")


def output_flags(p: argparse.ArgumentParser, json_help: str = "also write the result as JSON"):
    p.add_argument("--json", metavar="PATH", help=json_help)
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing")


def read_json(path, what: str, error):
    """A JSON file, or ``error`` naming the file and the problem."""
    try:
        with open(path) as f:
            return json.loads(f.read())
    except (OSError, ValueError, RecursionError) as exc:
        raise error(f"{path}: cannot read {what} ({type(exc).__name__}: {str(exc)[:120]})"
                    ) from exc


def write_json_result(path, data) -> None:
    from ..files import write_json

    if path:
        write_json(path, data.to_dict() if hasattr(data, "to_dict") else data)
