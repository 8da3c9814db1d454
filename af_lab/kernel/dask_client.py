"""The Dask client a kernel gets for a facility cluster: its dashboard link is the one a browser opens.

A scheduler's own dashboard listens on a loopback address of the machine that runs it, which the
user's browser cannot reach; af-lab hands out the link through the Jupyter server's proxy instead
(``dashboard_url``). ``distributed.Client.dashboard_link`` (shown in the client's repr, used by
dask-labextension) would otherwise name the loopback one, so ``%af_cluster new`` and its client
would print two different links.
"""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def _client_class():
    from distributed import Client  # imported only when a client is asked for

    class FacilityDaskClient(Client):
        """A ``distributed.Client`` whose ``dashboard_link`` is af-lab's proxied dashboard URL."""

        af_dashboard_url = ""

        @property
        def dashboard_link(self):
            return self.af_dashboard_url or super().dashboard_link

    return FacilityDaskClient


def facility_dask_client(address: str, dashboard_url: str, **kwargs: Any):
    """A client of the scheduler at ``address`` that links to ``dashboard_url`` (when there is one)."""
    client = _client_class()(address, **kwargs)
    client.af_dashboard_url = dashboard_url or ""
    return client
