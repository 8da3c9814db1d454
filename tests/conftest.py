"""Test harness: the real facility services on loopback, shared by the whole session.

Tests marked ``facility`` get a Jupyter server (pytest-jupyter's ``jp_fetch``)
configured with ``c.AFLab`` against a real Rucio server, OpenBao, XRootD/XCache
and Dask scheduler that this session starts in a private directory and stops by
PID at the end, even when tests fail. Set ``AF_LAB_FACILITY_DIR`` to reuse a
facility already brought up with ``python -m af_facility --dir DIR up``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from af_facility.facility import Facility
from af_facility.lab import aflab_config, seed_rucio_password

pytest_plugins = ("pytest_jupyter.jupyter_server",)

# The 50,000-file dataset is what users browse; tests page through all of it.
os.environ.setdefault("AF_DEMO_BIG_FILES", "50000")


def pytest_collection_modifyitems(items):
    # Facility tests share one expensive session fixture: run them after the quick ones
    # so a broken unit fails fast.
    items.sort(key=lambda item: item.get_closest_marker("facility") is not None)


@pytest.fixture(scope="session")
def facility():
    reuse = os.environ.get("AF_LAB_FACILITY_DIR")
    if reuse:
        fac = Facility(Path(reuse))
        yield fac
        return
    # Not pytest's tmp_path: it is 0700 and the xrootd server user must traverse the tree.
    root = Path(tempfile.mkdtemp(prefix="af-lab-facility-"))
    root.chmod(0o755)
    fac = Facility(root)
    try:
        fac.up()
        seed_rucio_password(fac.state)
        yield fac
    finally:
        fac.down()
        if not os.environ.get("AF_LAB_KEEP_FACILITY"):
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def aflab_settings(request) -> dict:
    """The ``AFLab`` config section for this test's Jupyter server."""
    if request.node.get_closest_marker("facility"):
        fac = request.getfixturevalue("facility")
        return aflab_config(fac.state)["AFLab"]
    tmp = request.getfixturevalue("tmp_path")
    return {"cache_dir": str(tmp / "cache"), "state_dir": str(tmp / "state")}


@pytest.fixture
def jp_server_config(aflab_settings):
    return {
        "ServerApp": {"jpserver_extensions": {"af_lab": True}, "allow_unauthenticated_access": False},
        "AFLab": aflab_settings,
    }
