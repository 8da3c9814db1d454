"""af-lab: a JupyterLab front door to a particle-physics analysis facility."""

try:
    from ._version import __version__
except ImportError:  # running from a source tree that was never built
    __version__ = "0.0.0.dev0"


def _jupyter_labextension_paths():
    return [{"src": "labextension", "dest": "af-lab"}]


def _jupyter_server_extension_points():
    from .app import AFLabApp

    return [{"module": "af_lab", "app": AFLabApp}]
