"""What the verbs share: dataset and output flags, reading and writing JSON."""

from __future__ import annotations

import argparse
import json
from contextlib import contextmanager

DATA_HELP = ("digits (built in, default), mnist, fashion-mnist, cifar10, cifar100, "
             "cifar100-coarse, or a path: a CIFAR folder (binary or Python version), a folder "
             "of the four IDX files or an .npz with x and y")


def dataset_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="digits", help=DATA_HELP)
    p.add_argument("--data-dir", default=None, help="directory of the IDX or CIFAR files")


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


def lava_flags(p: argparse.ArgumentParser, what: str = "a Lava run") -> None:
    """Where, how long and with which process models a Lava run runs: --timeout, --workers,
    --scheduler, --lava-models."""
    p.add_argument("--timeout", type=float, default=None, help=f"stop {what} after S s")
    p.add_argument("--workers", default=None, metavar="N",
                   help="split the samples over N processes, one Lava network each ('auto': "
                        "one per core; default 1); with --scheduler: the number of shards "
                        "(default: one per worker thread)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run the shards on a Dask cluster: local:N (a cluster of N workers "
                        "on this machine) or a scheduler address such as tcp://host:8786 "
                        "(needs lava-convert[dask])")
    p.add_argument("--lava-models", default="fast", choices=("fast", "stock"),
                   help="process models: fast (default: an exact torch convolution in place "
                        "of Lava's scipy one; the same spikes) or stock (Lava's own only)")


@contextmanager
def dask_client(scheduler: str | None):
    """The Dask client for ``--scheduler`` (closed on exit), or ``None`` without one."""
    if scheduler is None:
        yield None
        return
    import logging

    from ..lava.cluster import connect

    # dask.distributed logs every worker's start and stop at INFO, and a failed shard as
    # ERROR/WARNING lines and quoted tracebacks around the command line's own one-line
    # error (which names the shard and the cause): all of them only with --verbose
    verbose = logging.getLogger().getEffectiveLevel() <= logging.INFO
    with connect(scheduler, log_level=logging.INFO if verbose else logging.CRITICAL) as client:
        yield client
