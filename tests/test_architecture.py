"""The package's shape: stages import only earlier stages, the import graph has no cycles,
Loihi's numbers live in one module, and the quantization record stays out of ad-hoc dicts."""

from __future__ import annotations

import ast
import re

import pytest
from helpers import ROOT

PACKAGE = ROOT / "lava_convert"

#: Stage of every top-level part of the package, earliest first (docs/development.md,
#: "How it is built").
LEVELS = {
    "hw": 1, "errors": 1, "layers": 1, "files": 1, "version": 1, "interrupts": 1,
    "config": 2, "ir": 2, "targets": 2,
    "frontend": 3, "sim": 3, "netx": 3, "nir": 3,
    "passes": 4, "quantize": 4, "lava": 4,
    "pipeline": 5, "report": 5,
    "zoo": 6, "__init__": 6,
    "workflows": 7,
    "cli": 8, "demo": 8,
}


def modules() -> dict[str, ast.Module]:
    """Dotted name -> parsed source of every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = ast.parse(path.read_text())
    return found


def internal_imports(name: str, tree: ast.Module, known: set[str]) -> set[str]:
    """The package modules ``name`` imports anywhere (module level or inside functions)."""
    is_package = (PACKAGE / "/".join(name.split(".")[1:]) / "__init__.py").exists()
    base = name.split(".") if is_package else name.split(".")[:-1]
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            root = ".".join(base[:len(base) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (root, node.module or "") if p)
            targets.add(module)
            targets |= {f"{module}.{a.name}" for a in node.names}
    return {t for t in targets if t in known and t != name and t != "lava_convert"}


def stage(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    trees = modules()
    return {name: internal_imports(name, tree, set(trees)) for name, tree in trees.items()}


def test_every_part_of_the_package_has_a_stage(graph):
    assert {stage(name) for name in graph} == set(LEVELS)


#: The one deliberate upward name: ``lava_convert.netx.Network`` resolves, on first use, to
#: the Lava process that runs NetX files, as ``lava.lib.dl.netx.hdf5.Network`` does.
ALIASES = {("lava_convert.netx", "lava_convert.lava.procs.network"),
           ("lava_convert.netx", "lava_convert.lava.compat")}


def test_no_module_imports_a_later_stage(graph):
    wrong = [f"{a} ({LEVELS[stage(a)]}) imports {b} ({LEVELS[stage(b)]})"
             for a, targets in graph.items() for b in targets
             if LEVELS[stage(b)] > LEVELS[stage(a)] and (a, b) not in ALIASES]
    assert not wrong, wrong


def test_the_import_graph_has_no_cycles(graph):
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                pytest.fail(f"import cycle: {' -> '.join(path + [node, nxt])}")
            if nxt not in state:
                visit(nxt, path + [node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


LOIHI_NUMBERS = re.compile(r"2\s*\*\*\s*(17|23)\b|\b(4095|4096|254)\b|1\s*<<\s*17")


def test_loihi_numbers_are_written_in_one_module():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).as_posix() == "hw/loihi.py":
            continue
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if LOIHI_NUMBERS.search(code) and path.name != "neuron.py":
                offenders.append(f"{path.relative_to(ROOT)}:{lineno}: {line.strip()}")
    assert not offenders, offenders


def test_quantization_metadata_dicts_stay_in_the_netx_format():
    uses = [f"{path.relative_to(ROOT)}:{n}" for path in sorted(PACKAGE.rglob("*.py"))
            for n, line in enumerate(path.read_text().splitlines(), 1)
            if re.search(r"\bmeta\[", line) and "netx" not in path.parts]
    assert not uses, uses
