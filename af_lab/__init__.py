"""af-lab: a JupyterLab front door to a particle-physics analysis facility."""

try:
    from ._version import __version__
except ImportError:  # running from a source tree that was never built
    __version__ = "0.0.0.dev0"


def _jupyter_labextension_paths():
    return [{"src": "labextension", "dest": "af-lab"}]


def load_ipython_extension(ipython):
    """``%load_ext af_lab``: the %rucio and %af_cluster magics (imports nothing of the server)."""
    from .kernel.magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython):
    from .kernel.magics import unload_ipython_extension as unload

    unload(ipython)


def _jupyter_server_extension_points():
    from .app import AFLabApp

    return [{"module": "af_lab", "app": AFLabApp}]
