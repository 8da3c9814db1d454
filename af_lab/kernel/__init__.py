"""Kernel side of af-lab: a REST client (``FacilityClient``) and the ``%rucio`` / ``%af_cluster`` magics.

Importing this package loads ``requests`` and nothing of the server (no tornado, no
jupyter_server); IPython is imported only when the magics are loaded.
"""

from .client import FacilityClient, FacilityError, StoppedWaiting

__all__ = ["FacilityClient", "FacilityError", "StoppedWaiting", "load_ipython_extension", "unload_ipython_extension"]


def load_ipython_extension(ipython):
    from .magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython):
    from .magics import unload_ipython_extension as unload

    unload(ipython)
