"""The cluster backends af-lab knows, by the name a profile's ``backend`` uses.

A new backend is one module with a :class:`~.backend.Backend` subclass and one
line here.
"""

from __future__ import annotations

from .backend import Backend
from .htcondor import HTCondorBackend
from .local import LocalBackend
from .slurm import SlurmBackend

BACKENDS: dict[str, Backend] = {
    "local": LocalBackend(),
    "htcondor": HTCondorBackend(),
    "slurm": SlurmBackend(),
}
