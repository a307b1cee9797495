"""Each Python 3.11 fix for Lava: needed (plain import fails), applied, a no-op elsewhere."""

from __future__ import annotations

import sys

import pytest
from helpers import run_python

from lava_convert.lava import compat as lava_compat

needs_311 = pytest.mark.skipif(sys.version_info < (3, 11),
                               reason="the dataclass problem only exists on Python >= 3.11")


@needs_311
def test_var_model_fails_without_fix_and_imports_with_it():
    plain = run_python("import lava.magma.compiler.var_model")
    assert plain.returncode != 0 and "mutable default" in plain.stderr
    fixed = run_python("""
        from lava_convert.lava.compat import ensure_lava, applied
        ensure_lava()
        from lava.magma.compiler.var_model import ByteEncoder, CoreEncoder
        assert "var_model" in applied
        a, b = ByteEncoder(1, 2, 3), ByteEncoder(1, 2, 3)
        assert a == b and hash(a) == hash(b)
        c = CoreEncoder()
        assert c.x == ByteEncoder() and c.x is CoreEncoder().x  # shared default, as on 3.10
        print("ok")
    """)
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout.strip() == "ok"


def test_object_detection_fails_without_fix_and_netx_imports_with_it():
    plain = run_python("""
        from lava_convert.lava.compat import VAR_MODEL, MP_INFRA, import_with_hashable_default
        import_with_hashable_default(VAR_MODEL, "ByteEncoder")
        import lava.lib.dl.netx
    """)
    assert plain.returncode != 0
    assert "cv2" in plain.stderr or "torchvision" in plain.stderr
    fixed = run_python("""
        import sys
        from lava_convert.lava.compat import ensure_lava, applied
        ensure_lava()
        from lava.lib.dl.netx import hdf5
        assert "object_detection" in applied
        import lava.lib.dl.slayer as slayer
        try:
            slayer.obd.YOLOBase
        except ImportError as exc:
            print("ImportError:", exc)
    """)
    assert fixed.returncode == 0, fixed.stderr
    assert "object_detection is unavailable" in fixed.stdout
    assert "torchvision" in fixed.stdout


def test_start_method_already_fork_fails_without_fix_and_works_with_it():
    plain = run_python(f"""
        import multiprocessing
        multiprocessing.get_start_method()  # fixes the default context, as tqdm's lock does
        from lava_convert.lava.compat import ensure_lava
        import lava_convert.lava.compat as c
        c.applied.append("start_method")  # pretend done: skip our fix
        ensure_lava()
        import {lava_compat.MP_INFRA}
    """)
    assert plain.returncode != 0 and "context has already been set" in plain.stderr
    fixed = run_python("""
        import multiprocessing
        multiprocessing.get_start_method()
        from lava_convert.lava.compat import ensure_lava, applied
        ensure_lava()
        assert "start_method" in applied and multiprocessing.get_start_method() == "fork"
        print("ok")
    """)
    assert fixed.returncode == 0, fixed.stderr


def test_other_start_method_gets_a_clear_error():
    result = run_python("""
        import multiprocessing
        multiprocessing.set_start_method("spawn")
        from lava_convert.lava.compat import ensure_lava
        ensure_lava()
    """)
    assert result.returncode != 0
    assert "LavaUnavailableError" in result.stderr and "'fork'" in result.stderr


def test_importing_lava_convert_does_not_import_lava():
    result = run_python("""
        import sys, lava_convert
        print(sorted(m for m in sys.modules if m == "lava" or m.startswith("lava.")))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# The mechanisms on controlled modules: applied only on the failure they know.

def _write(tmp_path, name, files):
    pkg = tmp_path / name
    pkg.mkdir()
    for fname, text in files.items():
        (pkg / fname).write_text(text)
    sys.path.insert(0, str(tmp_path))


UNHASHABLE = """
from dataclasses import dataclass
@dataclass
class Enc:
    a: int = 0
@dataclass
class Holder:
    x: Enc = Enc()
"""


@needs_311
def test_hashable_default_fix_applies_only_when_needed(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    _write(tmp_path, "pkg_bad", {"__init__.py": "", "mod.py": UNHASHABLE})
    _write(tmp_path, "pkg_ok", {"__init__.py": "", "mod.py": UNHASHABLE.replace(
        "@dataclass\nclass Enc", "@dataclass(frozen=True)\nclass Enc")})
    assert lava_compat.import_with_hashable_default("pkg_bad.mod", "Enc") is True
    assert lava_compat.import_with_hashable_default("pkg_ok.mod", "Enc") is False
    import dataclasses

    assert dataclasses.dataclass.__module__ == "dataclasses"  # patch removed afterwards
    with pytest.raises(ValueError, match="mutable default"):  # other names are not touched
        _write(tmp_path, "pkg_other", {"__init__.py": "", "mod.py": UNHASHABLE})
        lava_compat.import_with_hashable_default("pkg_other.mod", "SomethingElse")


def test_optional_placeholder_applies_only_when_the_optional_part_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    _write(tmp_path, "pkg_opt_bad", {"__init__.py": "from . import opt\nVALUE = 1\n",
                                     "opt.py": "import module_that_does_not_exist_123\n"})
    _write(tmp_path, "pkg_opt_ok", {"__init__.py": "from . import opt\n", "opt.py": "X = 1\n"})
    _write(tmp_path, "pkg_core_bad", {"__init__.py": "import module_that_does_not_exist_456\n"
                                      "from . import opt\n", "opt.py": "X = 1\n"})
    assert lava_compat.import_without_optional("pkg_opt_bad", "pkg_opt_bad.opt") is True
    assert sys.modules["pkg_opt_bad"].VALUE == 1
    with pytest.raises(ImportError, match="unavailable"):
        sys.modules["pkg_opt_bad"].opt.anything
    assert lava_compat.import_without_optional("pkg_opt_ok", "pkg_opt_ok.opt") is False
    with pytest.raises(ModuleNotFoundError):  # failures elsewhere are not hidden
        lava_compat.import_without_optional("pkg_core_bad", "pkg_core_bad.opt")
