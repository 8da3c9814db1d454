"""The ``slurm`` backend: dask-jobqueue's ``SLURMCluster`` with af-lab's job class.

:class:`AFLabSLURMJob` extends ``SLURMJob`` through its public hooks only
(constructor, ``job_script()``, ``start()``, ``close()``):

* the worker runs the cluster's environment's python, after the profile's ``worker_launcher``
  if any (a site's wrapper: a container runtime, or the demo facility's isolating wrapper);
* every job carries the cluster's tag: job name ``af-<cluster id>`` and
  ``--comment=af-lab:<cluster id>``, so jobs are found by asking SLURM (:mod:`.slurm`);
* nothing of the Jupyter server's environment (its token, Vault's) reaches a job: ``sbatch``
  runs under ``env -i`` with the cluster's allow-listed environment (plus SLURM's own ``SLURM_*``
  client settings) and the job gets exactly that (``--export=ALL``); the prologue exports the
  allow-listed environment again. (Not ``--export=NONE``: SLURM then rebuilds the user's login
  environment with ``su - <user> -c env`` before every job, ~2 s per worker start on 22.05);
* files af-lab ships (the bearer token; TLS certificates and keys) travel *inside*
  the job script, which slurmctld keeps readable by root and the job's owner only.
  The script's prologue writes them, ``umask 077``, into ``AF_LAB_JOB_DIR=$(mktemp -d)``
  (0700, removed when the job ends) and exports ``BEARER_TOKEN_FILE`` and Dask's TLS
  configuration (paths, never the secrets). A local path of a shipped file in the worker command (dask-jobqueue puts
  ``--tls-*-file <path>`` there) is rewritten to the job's copy;
* the job id goes to af-lab's ledger the moment ``sbatch`` returns, and a failed
  ``sbatch`` becomes an error that shows its stderr.
"""

from __future__ import annotations

import base64
import os
import shlex
from pathlib import Path
from typing import Any

from dask_jobqueue.slurm import SLURMCluster, SLURMJob

from . import slurm, tls
from .backend import BackendContext, LedgerJob
from .worker_token import ENV_VAR, FILE_NAME

DEFAULT_DEATH_TIMEOUT_S = 60
DEFAULT_WALLTIME = "08:00:00"
JOB_DIR_ENV = "AF_LAB_JOB_DIR"


class AFLabSLURMJob(LedgerJob, SLURMJob):
    """One SLURM job = one Dask worker, with af-lab's tag, shipped files and bookkeeping hooks."""

    def __init__(
        self,
        *args,
        slurm_settings: dict[str, Any] | None = None,
        ship_files: dict[str, str] | None = None,
        submit_env: dict[str, str] | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self._settings = slurm_settings or {}
        self._ship_files = dict(ship_files or {})
        conf = self._settings.get("slurm_conf")
        prefix = f"env SLURM_CONF={shlex.quote(str(conf))} " if conf else ""
        extra = " ".join(shlex.quote(a) for a in self._settings.get("submit_command_extra") or [])
        # sbatch (and so the job, --export=ALL) sees the allow-listed environment only; the values are
        # not secret (see environments.ALLOWED_ENV), so they may show on sbatch's command line.
        env = {k: v for k, v in os.environ.items() if k.startswith("SLURM_")}
        env.update(submit_env or {})
        env.setdefault("PATH", os.environ.get("PATH", "/usr/bin:/bin"))  # where sbatch is
        if conf:
            env["SLURM_CONF"] = str(conf)
        clean = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(env.items()))
        self.submit_command = f"env -i {clean} sbatch {extra}".strip()
        extra = " ".join(shlex.quote(a) for a in self._settings.get("cancel_command_extra") or [])
        self.cancel_command = f"{prefix}scancel {extra}".strip()

    def job_script(self) -> str:
        script = super().job_script()
        if not self._ship_files:
            return script
        lines = script.split("\n")
        # The prologue goes right after the #SBATCH header (before dask-jobqueue's own prologue lines).
        last_directive = max((i for i, line in enumerate(lines) if line.startswith("#SBATCH")), default=0)
        body = "\n".join(lines[last_directive + 1:])
        for name, local in self._ship_files.items():
            body = body.replace(str(local), f'"${JOB_DIR_ENV}/{name}"')
        return "\n".join([*lines[: last_directive + 1], *self._unpack_lines(), body])

    def _unpack_lines(self) -> list[str]:
        out = [
            "umask 077",
            f'{JOB_DIR_ENV}=$(mktemp -d "${{TMPDIR:-/tmp}}/af-lab-job.XXXXXXXX") || exit 1',
            f"export {JOB_DIR_ENV}",
            f"trap 'rm -rf \"${JOB_DIR_ENV}\"' EXIT",
        ]
        for name, local in self._ship_files.items():
            data = base64.b64encode(Path(local).read_bytes()).decode()
            out += [f'base64 -d > "${JOB_DIR_ENV}/{name}" <<\'AF_LAB_EOF\'', data, "AF_LAB_EOF"]
            if name == FILE_NAME:
                out.append(f'export {ENV_VAR}="${JOB_DIR_ENV}/{FILE_NAME}"')
        return out

    def command_failed(self, exit_code: int, stderr: str) -> slurm.SlurmCommandFailed:
        return slurm.SlurmCommandFailed("sbatch", exit_code, stderr)


def slurm_cluster(ctx: BackendContext) -> SLURMCluster:
    """An (unstarted) SLURMCluster for this cluster context; the service awaits it."""
    s, options = ctx.settings, ctx.options
    directives = [f"--comment={slurm.COMMENT_PREFIX}{ctx.cluster_id}", "--export=ALL"]  # of sbatch's clean env
    if options.gpus:
        directives.append(f"--gres=gpu:{options.gpus}")
    directives += list(s.get("job_extra_directives") or [])
    # TLS files and the token travel inside the script (see the module doc); only paths go into the environment.
    files = {p.name: str(p) for p in ctx.tls.worker_files()}
    if ctx.token_file is not None:
        files[FILE_NAME] = str(ctx.token_file)
    env = {k: v for k, v in ctx.env.items() if not k.startswith("SLURM_")}  # the allow-listed environment
    prologue = [f"export {k}={shlex.quote(v)}" for k, v in sorted(env.items())]
    prologue += [f'export {k}="{v}"' for k, v in tls.worker_env(f"${JOB_DIR_ENV}").items()]
    prologue += list(s.get("job_script_prologue") or [])
    launcher = s.get("worker_launcher") or []
    launcher = shlex.split(launcher) if isinstance(launcher, str) else list(launcher)
    log_dir = ctx.run_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    cluster = SLURMCluster(
        name=ctx.dask_name,
        job_name=slurm.job_name(ctx.cluster_id),
        cores=options.cores,
        processes=1,
        memory=str(options.memory),
        queue=s.get("partition"),
        account=s.get("account"),
        walltime=s.get("walltime", DEFAULT_WALLTIME),
        python=shlex.join([*launcher, ctx.python]),
        death_timeout=s.get("death_timeout", DEFAULT_DEATH_TIMEOUT_S),
        worker_extra_args=list(s.get("worker_extra_args") or []),
        job_script_prologue=prologue,
        job_extra_directives=directives,
        log_directory=str(log_dir),
        job_cls=AFLabSLURMJob,
        slurm_settings=s,
        ship_files=files,
        submit_env=env,
        **ctx.jobqueue_options(),
    )
    return ctx.detached(cluster)
