"""Jupyter server configuration for the af-lab Galata tests.

    jlpm start   # = jupyter lab --config jupyter_server_test_config.py

Environment:
    AF_LAB_UI_PORT          port to listen on (default 8899; playwright.config.js reads it too)
    AF_LAB_UI_EXTRA_CONFIG  a jupyter_server_config.json (or .py) loaded on top, e.g. the
                            c.AFLab settings that point at the facility's real services

The server's root and workspaces folders live in test-results/server/ (not /tmp),
so nothing is left behind outside ui-tests/ however the server is stopped.

Never use this configuration outside tests: it turns off authentication.
"""

import os
import shutil
from pathlib import Path

from jupyterlab.galata import configure_jupyter_server
from traitlets.config.loader import JSONFileConfigLoader, PyFileConfigLoader

c = get_config()  # noqa: F821 (provided by the traitlets config loader)

HERE = Path(__file__).resolve().parent
SERVER_DIR = HERE / "test-results" / "server"

configure_jupyter_server(c)  # no token, no XSRF check, Galata's helper extension

# configure_jupyter_server made empty temporary folders (and a bash rcfile) in /tmp:
# replace them with folders under test-results/server/, fresh for every run.
_made_by_galata = [c.LabApp.workspaces_dir]
if "JUPYTERLAB_GALATA_ROOT_DIR" not in os.environ:
    _made_by_galata.append(c.ServerApp.root_dir)
for folder in _made_by_galata:
    if os.path.basename(folder).startswith("galata-"):
        try:
            os.rmdir(folder)
        except OSError:
            pass
_shell = list((c.ServerApp.terminado_settings or {}).get("shell_command", []))
if len(_shell) == 3 and _shell[1] == "--rcfile" and os.path.basename(_shell[2]).startswith("tmp"):
    try:
        os.unlink(_shell[2])
    except OSError:
        pass

shutil.rmtree(SERVER_DIR, ignore_errors=True)
(SERVER_DIR / "workspaces").mkdir(parents=True)
c.LabApp.workspaces_dir = str(SERVER_DIR / "workspaces")
if "JUPYTERLAB_GALATA_ROOT_DIR" not in os.environ:
    (SERVER_DIR / "root").mkdir()
    c.ServerApp.root_dir = str(SERVER_DIR / "root")
_rcfile = SERVER_DIR / "bashrc"
_rcfile.write_text('PS1="$ "\n')
c.ServerApp.terminado_settings = {"shell_command": ["/bin/bash", "--rcfile", str(_rcfile)]}


def harness_settings(c):
    """What the test run relies on; applied again after the extra config."""
    c.ServerApp.ip = "127.0.0.1"
    c.ServerApp.port = int(os.environ.get("AF_LAB_UI_PORT", "8899"))
    c.ServerApp.port_retries = 0
    c.ServerApp.open_browser = False
    c.ServerApp.allow_root = True
    # Galata deletes each test's folder; do not fill a trash can with them.
    c.FileContentsManager.delete_to_trash = False


harness_settings(c)

extra = os.environ.get("AF_LAB_UI_EXTRA_CONFIG", "").strip()
if extra:
    extra_path = Path(extra).expanduser().resolve()
    if not extra_path.is_file():
        raise SystemExit(f"AF_LAB_UI_EXTRA_CONFIG={extra}: no such file")
    loader_class = PyFileConfigLoader if extra_path.suffix == ".py" else JSONFileConfigLoader
    c.merge(loader_class(extra_path.name, path=str(extra_path.parent)).load_config())
    harness_settings(c)  # the harness keeps its address, port and root permission
