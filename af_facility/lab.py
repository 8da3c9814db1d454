"""JupyterLab with af-lab configured against the facility, exactly as a site would configure it.

The facility is one more client of af-lab: it writes ordinary ``c.AFLab``
configuration (a JSON config file) and plays the hub by handing the session a
JWT file. It also seeds the demo user's Rucio password into the user's Vault
path, which is what a site's spawn hook (or the user, through the UI) does.
"""

from __future__ import annotations

import json
import secrets
import shutil
import sys
from pathlib import Path
from typing import Any

from .base import FacilityState, Service
from .procs import LOOPBACK, ManagedProcess, free_port, port_is_free

REPO = Path(__file__).resolve().parent.parent
DEMO_USER = "jdoe"
DEMO_INSTANCE = "demo"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ANALYSIS_KERNEL = "af-analysis"  # dev.sh registers it (requirements-analysis.txt)


def aflab_config(state: FacilityState, user: str = DEMO_USER) -> dict[str, Any]:
    """The ``{"AFLab": {...}}`` config for ``user`` against this facility's services."""
    s = state.services
    cfg: dict[str, Any] = {
        "cache_dir": str(state.root / "cache"),
        "state_dir": str(state.root / "af-lab-state" / user),
        "mount_root": "af-data",
    }
    rucio = s.get("rucio")
    if rucio and rucio.get("available", True):
        cfg["rucio_instances"] = [
            {
                "name": DEMO_INSTANCE,
                "display_name": "Demo facility",
                "rucio_host": rucio["url"],
                "auth_host": rucio["url"],
                "auth_type": "userpass",
                "account": user,
                "username": user,
                "rse_mounts": dict(rucio.get("rses", {})),
                "default_rse": "SITE1_USERDISK",
            }
        ]
        cfg["default_rucio_instance"] = DEMO_INSTANCE
        cfg["publish_defaults"] = {"rse": "SITE1_USERDISK", "lifetime_days": 30, "scope": f"user.{user}"}
        cfg["embargoed_scopes"] = {"cms_embargoed": "/cms/embargo"}
    bao = s.get("openbao")
    if bao and bao.get("available", True):
        cfg.update(
            vault_address=bao["addr"],
            vault_auth="jwt",
            vault_jwt_file=str(bao["user_jwt_files"][user]) if user in bao.get("user_jwt_files", {}) else "",
            vault_jwt_role=bao.get("jwt_role", "jupyter"),
            vault_jwt_mount=bao.get("jwt_mount", "jwt"),
            vault_kv_mount=bao.get("kv_mount", "secret"),
            vault_user_prefix=bao.get("user_prefix", "users"),
        )
    xrd = s.get("xrootd")
    if xrd and xrd.get("available"):
        cfg["xcache_url"] = xrd["cache_url"]
    dask = s.get("dask")
    if dask and dask.get("available", True) and dask.get("address"):
        cfg["dask_scheduler_address"] = dask["address"]
    cfg["cluster_profiles"] = demo_cluster_profiles(state)
    cfg["default_cluster_profile"] = "local"
    analysis = REPO / ".venv-analysis" / "bin" / "python"
    if analysis.exists():  # the analysis stack (dask-awkward, coffea, ROOT), see requirements-analysis.txt
        cfg["cluster_environments"] = {"analysis": {"python": str(analysis), "display_name": "AF analysis"}}
    return {"AFLab": cfg}


def demo_cluster_profiles(state: FacilityState) -> dict[str, Any]:
    """``local`` (workers next to the server) and, when the facility runs SLURM, an HPC-style ``slurm``.

    The ``slurm`` profile is also the example of choosing capacity (seed 004 R11): its form offers
    GPUs per worker (limit ``max_gpus``). This facility's node has none, so a GPU request is refused
    by SLURM at submit time ("Requested node configuration is not available") instead of pending forever.
    """
    profiles: dict[str, Any] = {
        "local": {
            "backend": "local",
            "display_name": "Local (this server)",
            "description": "Dask workers as processes next to your notebook server.",
            "defaults": {"cores": 1, "memory": "1 GiB", "workers": 0},
            "limits": {"max_workers": 4, "max_cores": 2, "max_memory": "4 GiB", "max_clusters": 2},
        }
    }
    if (REPO / ".venv-analysis" / "bin" / "python").exists():
        profiles["local"]["environments"] = ["analysis", "server"]
    slurm = state.services.get("slurm")
    if slurm and slurm.get("available", True) and slurm.get("conf"):
        profiles["slurm"] = {
            "backend": "slurm",
            "display_name": "SLURM batch (HPC)",
            "description": "Workers are SLURM jobs on the batch nodes: they see only what the cluster ships "
                           "and data reachable by URL (root:// through the XCache).",
            "slurm_conf": slurm["conf"],
            "partition": slurm.get("partition", "batch"),
            "walltime": "02:00:00",
            "worker_launcher": slurm["worker_python"],  # the facility's isolating wrapper around the env's python
            "death_timeout": 30,
            "worker_start_timeout": 300,
            "defaults": {"cores": 1, "memory": "1 GiB", "gpus": 0, "workers": 0},
            "limits": {"max_workers": 8, "max_cores": 2, "max_memory": "4 GiB", "max_gpus": 1, "max_clusters": 2},
        }
        if "environments" in profiles["local"]:
            profiles["slurm"]["environments"] = ["analysis", "server"]
    return profiles


def seed_rucio_password(state: FacilityState, user: str = DEMO_USER) -> None:
    """Put ``user``'s demo Rucio password into their Vault path (the facility acting as the site admin)."""
    import hvac

    bao, rucio = state.services["openbao"], state.services["rucio"]
    client = hvac.Client(url=bao["addr"], token=bao["root_token"])
    client.secrets.kv.v2.create_or_update_secret(
        path=f"{bao.get('user_prefix', 'users')}/{user}/rucio/{DEMO_INSTANCE}",
        secret={"auth_type": "userpass", "username": user, "password": rucio["accounts"][user]["password"]},
        mount_point=bao.get("kv_mount", "secret"),
    )


class JupyterLab(Service):
    name = "lab"

    def _proc(self) -> ManagedProcess:
        d = self.state.dir("lab")
        return ManagedProcess("jupyterlab", self.state.root / "run" / "lab.pid", self.state.root / "logs" / "lab.log", str(d))

    def running(self) -> bool:
        return self._proc().is_running()

    def write_config(self) -> Path:
        d = self.state.dir("lab")
        path = d / "jupyter_server_config.json"
        path.write_text(json.dumps(aflab_config(self.state), indent=2))
        return path

    def up(self) -> dict[str, Any]:
        info = dict(self.info)
        proc = self._proc()
        if proc.is_running() and info.get("url"):
            return info
        if "openbao" in self.state.services and "rucio" in self.state.services:
            seed_rucio_password(self.state)
        config = self.write_config()
        workspace = self.state.dir("workspace")
        copy_examples(workspace / "examples")
        port = info.get("port") if info.get("port") and port_is_free(info["port"]) else free_port()
        token = info.get("token") or secrets.token_hex(16)
        d = self.state.dir("lab")
        env = {
            "JUPYTER_RUNTIME_DIR": str(d / "runtime"),
            "JUPYTER_DATA_DIR": str(d / "data"),
            "DASK_CONFIG": str(d / "dask-config"),
            "JUPYTER_TOKEN": token,
        }
        slurm = self.state.services.get("slurm") or {}
        env.update(slurm.get("env") or {})  # squeue/sbatch in the lab's terminals reach the facility's SLURM
        proc.start(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--ip={LOOPBACK}", f"--port={port}",
             "--ServerApp.port_retries=0", f"--ServerApp.root_dir={workspace}", f"--config={config}",
             "--ServerApp.log_level=INFO", f"--LabApp.workspaces_dir={d / 'workspaces'}", *default_kernel()],
            env=env,
            cwd=workspace,
        )
        import requests

        proc.wait_until(
            lambda: requests.get(f"http://{LOOPBACK}:{port}/api/status", params={"token": token}, timeout=2).ok,
            120,
            "answering on /api/status",
        )
        return {"url": f"http://{LOOPBACK}:{port}/lab?token={token}", "port": port, "token": token,
                "config": str(config), "workspace": str(workspace)}

    def down(self) -> None:
        self._proc().stop()


def copy_examples(target: Path) -> list[Path]:
    """The demo notebooks, copied into the workspace once (a user's edits are theirs to keep)."""
    copied = []
    target.mkdir(parents=True, exist_ok=True)
    for src in sorted(EXAMPLES.glob("*.ipynb")):
        dst = target / src.name
        if not dst.exists():
            shutil.copyfile(src, dst)
            copied.append(dst)
    return copied


def default_kernel() -> list[str]:
    """New notebooks get the analysis kernel when it is installed."""
    from jupyter_client.kernelspec import KernelSpecManager

    if ANALYSIS_KERNEL in KernelSpecManager().find_kernel_specs():
        return [f"--MappingKernelManager.default_kernel_name={ANALYSIS_KERNEL}"]
    return []
