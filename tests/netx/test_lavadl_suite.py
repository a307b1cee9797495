"""lava-dl's own NetX test suite (shipped in the lava-dl wheel) with our ``Network`` in
place of stock ``netx.hdf5.Network``: what it builds passes; what it does not yet build
is refused by name (a typed error naming the layer or neuron type), never run wrong."""

from __future__ import annotations

import sys
import unittest
from importlib import metadata

import pytest

from lava_convert.errors import NetXFormatError

pytestmark = pytest.mark.lava

#: Tests our Network passes, and the ones it refuses (with the type it names).
PASSES = ("test_input_transform", "test_mnist", "test_num_layers", "test_pilotnet_sdnn",
          "test_pilotnet_sdnn_spike_exp", "test_sparse_pilotnet_sdnn", "test_tinynet")
REFUSED = {"test_axonal_delay_ntidigits": "axonal delays",
           "test_sparse_axonal_delay_ntidigits": "axonal delays",
           "test_recurrent_netx_save_and_load": "'dense_rec'"}


@pytest.fixture(scope="module")
def suite_module():
    root = metadata.distribution("lava-dl").locate_file("")
    if not (root / "tests/lava/lib/dl/netx/test_hdf5.py").exists():
        pytest.skip("lava-dl's NetX tests are not installed")
    from lava_convert.lava.compat import ensure_lava

    ensure_lava()
    sys.path.insert(0, str(root))
    try:
        from tests.lava.lib.dl.netx import test_hdf5
    finally:
        sys.path.remove(str(root))
    return test_hdf5


def run_one(module, name: str) -> unittest.TestResult:
    result = unittest.TestResult()
    module.TestHdf5Netx(name).run(result)
    return result


@pytest.mark.parametrize("name", PASSES)
def test_lava_dl_tests_pass_with_our_network(suite_module, name, monkeypatch):
    from lava.lib.dl import netx

    import lava_convert.netx as ours

    assert {n for n in dir(suite_module.TestHdf5Netx) if n.startswith("test_")} == set(
        PASSES) | set(REFUSED)  # the suite is the one these lists describe
    monkeypatch.setattr(netx.hdf5, "Network", ours.Network)
    result = run_one(suite_module, name)
    assert result.wasSuccessful(), result.failures + result.errors


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_what_our_network_does_not_build_yet_is_refused_by_name(suite_module, name,
                                                                 monkeypatch):
    from lava.lib.dl import netx

    import lava_convert.netx as ours

    monkeypatch.setattr(netx.hdf5, "Network", ours.Network)
    result = run_one(suite_module, name)
    assert len(result.errors) == 1 and not result.failures
    assert NetXFormatError.__name__ in result.errors[0][1] and REFUSED[name] in \
        result.errors[0][1]
