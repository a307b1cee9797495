"""The tutorials/ notebooks: stored without outputs, and each runs without error.

Each notebook is executed top to bottom with nbclient in a fresh kernel, in a
temporary directory, with ``LAVA_CONVERT_QUICK=1`` (small subsets). MNIST for the
CNN tutorial is stood in for by MNIST-format IDX files made from scikit-learn's
digits (upsampled to 28x28), so the test needs no download.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))


def test_the_six_tutorials_exist():
    assert [p.name[:3] for p in NOTEBOOKS] == ["01_", "02_", "03_", "04_", "05_", "06_"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path):
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{path.name} has no code"
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
             and (c.outputs or c.execution_count is not None)]
    assert not dirty, f"{path.name}: cells {dirty} keep outputs; clear them before committing"


def digits_as_mnist(directory: Path) -> Path:
    """scikit-learn's digits, upsampled to 28x28 uint8, written as MNIST IDX files."""
    import torch
    import torch.nn.functional as F

    from lava_convert.zoo.data import IDX_FILES, load_digits

    d = load_digits()
    directory.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        x = torch.as_tensor(getattr(d, f"x_{split}"))
        big = F.interpolate(x, size=(24, 24), mode="bilinear", align_corners=False)
        big = F.pad(big, (2, 2, 2, 2))[:, 0].clamp(0, 1).mul(255).round().to(torch.uint8)
        images = big.numpy()
        labels = getattr(d, f"y_{split}").astype(np.uint8)
        for arr, key in ((images, f"x_{split}"), (labels, f"y_{split}")):
            header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(
                int(n).to_bytes(4, "big") for n in arr.shape)
            (directory / (IDX_FILES[key] + ".gz")).write_bytes(
                gzip.compress(header + arr.tobytes()))
    return directory


@pytest.mark.lava
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    monkeypatch.setenv("LAVA_CONVERT_QUICK", "1")
    monkeypatch.setenv("LAVA_CONVERT_MNIST", str(digits_as_mnist(tmp_path / "mnist")))
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError naming the failing cell
    assert all(c.execution_count for c in nb.cells if c.cell_type == "code")


def documented_commands() -> list[tuple[str, str]]:
    """Every ``lava-convert ...`` command in code blocks and table cells of the README, of
    the pages in docs/ and of the tutorials' text (``a\\|b`` alternatives in tables: the
    first; ``[--flag]``: used)."""
    import json
    import re

    sources = {"README.md": (TUTORIALS.parent / "README.md").read_text()}
    for page in sorted((TUTORIALS.parent / "docs").glob("*.md")):
        sources[f"docs/{page.name}"] = page.read_text()
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text())["cells"]
        sources[path.name] = "\n".join("".join(c["source"]) for c in cells
                                       if c["cell_type"] == "markdown")
    found = []
    for where, text in sources.items():
        for block in re.findall(r"```[a-z]*\n(.*?)```", text.replace("\\\n", " "), re.S):
            found += [(where, line.split("  #")[0].strip()) for line in block.splitlines()
                      if line.startswith("lava-convert ")]
        for cell in re.findall(r"\| `(lava-convert [^`]*)` \|", text):
            cell = re.sub(r"(\w+)\\\|\w+", r"\1", cell)
            found.append((where, re.sub(r"\[([^\]]*)\]", r"\1", cell)))
    return found


def test_documented_commands_parse():
    import shlex

    from lava_convert.cli import build_parser

    commands = documented_commands()
    assert len(commands) >= 15  # the README's walk-through and verb table, the tutorials
    parser = build_parser()
    for where, line in commands:
        try:
            parser.parse_args(shlex.split(line)[1:])
        except SystemExit as exc:
            raise AssertionError(f"{where}: `{line}` does not parse") from exc


def test_every_error_class_is_in_the_errors_table_and_exported():
    """docs/errors.md lists what each typed error means; the list is the package's, not
    hand-kept (it once missed classes)."""
    import lava_convert as lc
    from lava_convert import errors

    table = (TUTORIALS.parent / "docs" / "errors.md").read_text()
    classes = [c.__name__ for c in vars(errors).values() if isinstance(c, type)
               and issubclass(c, errors.LavaConvertError) and c is not errors.LavaConvertError]
    assert len(classes) >= 12
    missing = [name for name in classes if f"`{name}`" not in table.split("\nWarnings")[0]]
    assert missing == [], f"docs/errors.md has no row for {missing}"
    assert set(classes) <= set(lc.__all__)
