"""The ``htcondor`` backend: dask-jobqueue's ``HTCondorCluster`` with af-lab's scheduler process and tags.

Every job carries ``MY.AFLabClusterId`` (status and cleanup find jobs by it,
see :mod:`.condor`), and ships, encrypted in transit (``transfer_input_files``
+ ``encrypt_input_files``), the cluster's worker certificate, key and CA and the
data-access token when there is one. The job's prologue points Dask's TLS
configuration and ``$BEARER_TOKEN_FILE`` at those files in its scratch
directory (paths, never secrets). The worker runs the cluster's environment's
Python.

:class:`AFLabHTCondorJob` only adds bookkeeping around dask-jobqueue's public
``start``/``close``: it reports each job id to af-lab's ledger the moment
``condor_submit`` returns, and turns a failed submit into a
:class:`~.condor.CondorCommandFailed` carrying condor_submit's stderr (parsed
from dask-jobqueue's error text).
"""

from __future__ import annotations

from typing import Any

from dask_jobqueue.htcondor import HTCondorCluster, HTCondorJob

from . import condor, tls
from .backend import Backend, BackendContext, JobState, LedgerJob
from .condor import CLUSTER_ATTR, CondorCommandFailed
from .worker_token import ENV_VAR, FILE_NAME

DEFAULT_DEATH_TIMEOUT_S = 60
SCRATCH = "${_CONDOR_SCRATCH_DIR:-$PWD}"


class AFLabHTCondorJob(LedgerJob, HTCondorJob):
    """One HTCondor job = one Dask worker, with af-lab's bookkeeping hooks."""

    def command_failed(self, exit_code: int, stderr: str) -> CondorCommandFailed:
        return CondorCommandFailed("condor_submit", exit_code, stderr)


def _append_list(directives: dict[str, Any], key: str, files: list[str]) -> None:
    listed = [f for f in str(directives.get(key, "")).split(",") if f.strip()]
    directives[key] = ",".join([*listed, *files])


class HTCondorBackend(Backend):
    name = "htcondor"

    def build(self, ctx: BackendContext) -> HTCondorCluster:
        s, options = ctx.settings, ctx.options
        directives: dict[str, Any] = {}
        if options.gpus:
            directives["request_gpus"] = options.gpus
        if options.universe:
            directives["universe"] = options.universe
        if options.image:
            directives[s.get("image_directive", "container_image")] = options.image
        directives.update(s.get("job_extra_directives") or {})
        directives[f"MY.{CLUSTER_ATTR}"] = f'"{ctx.cluster_id}"'  # last: status and cleanup depend on it
        # Shipped with the job, encrypted in transit; only paths go into the job's environment.
        shipped = [str(p) for p in ctx.tls.worker_files()]
        prologue = [f'export {k}="{v}"' for k, v in tls.worker_env(SCRATCH).items()]
        if ctx.token_file is not None:
            shipped.append(str(ctx.token_file))
            prologue.append(f'export {ENV_VAR}="{SCRATCH}/{FILE_NAME}"')
        _append_list(directives, "transfer_input_files", shipped)
        _append_list(directives, "encrypt_input_files", shipped)
        directives.setdefault("should_transfer_files", "YES")
        prologue += list(s.get("job_script_prologue") or [])
        log_dir = ctx.run_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return _htcondor_cluster(ctx, prologue, directives, log_dir)

    async def list_jobs(self, ctx: BackendContext) -> dict[str, JobState]:
        return await condor.query(ctx.cluster_id, ctx.settings.get("query_command_extra"))

    async def remove_jobs(self, ctx: BackendContext) -> None:
        await condor.remove_all(ctx.cluster_id, ctx.settings.get("cancel_command_extra"))

    async def remove_job(self, ctx: BackendContext, job_id: str) -> None:
        await condor.remove_one(job_id, ctx.settings.get("cancel_command_extra"))


def _htcondor_cluster(ctx: BackendContext, prologue: list[str], directives: dict[str, Any], log_dir) -> HTCondorCluster:
    s, options = ctx.settings, ctx.options
    cluster = HTCondorCluster(
        name=ctx.dask_name,
        cores=options.cores,
        processes=1,
        memory=str(options.memory),
        disk=str(options.disk),
        python=ctx.python,
        death_timeout=s.get("death_timeout", DEFAULT_DEATH_TIMEOUT_S),
        worker_extra_args=list(s.get("worker_extra_args") or []),
        job_script_prologue=prologue,
        job_extra_directives=directives,
        submit_command_extra=list(s.get("submit_command_extra") or []),
        cancel_command_extra=list(s.get("cancel_command_extra") or []),
        log_directory=str(log_dir),
        job_cls=AFLabHTCondorJob,
        **ctx.jobqueue_options(),
    )
    return ctx.detached(cluster)
