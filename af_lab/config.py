"""af-lab's one configuration surface: ``c.AFLab.*`` in any Jupyter server config.

Everything a site changes lives here; nothing else reads environment variables
or files for configuration. The embedded demo facility writes exactly these
traits, and a real site sets the same ones (HTTPS Rucio, a site Vault, its
XCache, its HTCondor pool).
"""

from __future__ import annotations

from pathlib import Path

from traitlets import Bool, Dict, Enum, Float, Int, List, Unicode, default, validate
from traitlets.config import Configurable


class AFLab(Configurable):
    # --- Rucio -------------------------------------------------------------
    rucio_instances = List(
        Dict(),
        default_value=[],
        help="""Rucio instances. Each is a dict:
        name (id), display_name, rucio_host, auth_host (default rucio_host),
        auth_type ('userpass' | 'x509_proxy' | 'oidc'), account, vo,
        ca_cert (path, or true for the system bundle), username (userpass; the
        password is entered by the user and kept in Vault),
        x509_proxy_file (x509_proxy), oidc_token_env / oidc_token_file (oidc: a
        hub-issued JWT; else the token kept in Vault),
        rse_mounts ({RSE: local path prefix} for replica mode),
        default_rse (publish target), webui_url.""",
    ).tag(config=True)
    default_rucio_instance = Unicode("", help="Name of the default Rucio instance (first one if empty).").tag(
        config=True
    )
    rucio_timeout = Float(30.0, help="Seconds before a Rucio request is abandoned.").tag(config=True)
    rucio_concurrency = Int(4, help="Rucio calls run at most this many at a time, off the event loop.").tag(
        config=True
    )
    listing_cache_ttl = Float(300.0, help="Seconds a cached DID listing is served before it is refetched.").tag(
        config=True
    )

    # --- Vault (credential service) ---------------------------------------
    vault_address = Unicode("", help="Vault/OpenBao URL, e.g. https://vault.example.org:8200. Empty: no Vault.").tag(
        config=True
    )
    vault_ca_cert = Unicode("", help="CA bundle for Vault TLS (empty: system bundle).").tag(config=True)
    vault_auth = Enum(
        ["token", "jwt"],
        default_value="jwt",
        help="How the server logs in to Vault for the user: a Vault token handed over by the hub, "
        "or the hub-issued JWT through Vault's JWT auth method.",
    ).tag(config=True)
    vault_token_env = Unicode("VAULT_TOKEN", help="Environment variable holding a Vault token (vault_auth=token).").tag(
        config=True
    )
    vault_token_file = Unicode("", help="File holding a Vault token (vault_auth=token); read at each login.").tag(
        config=True
    )
    vault_jwt_env = Unicode("AF_LAB_JWT", help="Environment variable holding the hub-issued JWT (vault_auth=jwt).").tag(
        config=True
    )
    vault_jwt_file = Unicode("", help="File holding the hub-issued JWT (vault_auth=jwt); read at each login.").tag(
        config=True
    )
    vault_jwt_role = Unicode("jupyter", help="Vault JWT auth role.").tag(config=True)
    vault_jwt_mount = Unicode("jwt", help="Mount path of Vault's JWT auth method.").tag(config=True)
    vault_kv_mount = Unicode("secret", help="KV v2 mount holding user secrets.").tag(config=True)
    vault_user_prefix = Unicode("users", help="Per-user secrets live under <kv_mount>/<prefix>/<user>/.").tag(
        config=True
    )
    vault_user = Unicode("", help="User name used in the Vault path (default: the JWT's sub, else the OS user).").tag(
        config=True
    )
    vault_renew_margin = Float(
        0.25, help="Renew the Vault token when less than this fraction of its TTL remains."
    ).tag(config=True)
    secret_cache_ttl = Float(60.0, help="Seconds a secret read from Vault is kept in memory.").tag(config=True)

    # --- Data: cache, mounts, XCache --------------------------------------
    cache_dir = Unicode(help="Content-addressed cache of fetched files (shared by all mounts).").tag(config=True)
    cache_quota_bytes = Int(0, help="Cache size limit in bytes; 0 means 90% of the free disk at start.").tag(
        config=True
    )
    mount_root = Unicode("af-data", help="Workspace folder (relative to the server root) where DIDs are mounted.").tag(
        config=True
    )
    xcache_url = Unicode("", help="XCache endpoint, e.g. root://xcache.example.org:1094. Empty: no cache.").tag(
        config=True
    )
    mount_concurrency = Int(4, help="Files fetched in parallel per mount.").tag(config=True)

    # --- Dask clusters ------------------------------------------------------
    cluster_profiles = Dict(
        default_value={},
        help="""Cluster profiles by name. Each: {"backend": "local" | "htcondor",
        "display_name", "defaults": {cores, memory, disk, image, ...},
        "limits": {max_workers, max_cores, max_memory, max_disk, images: [...]},
        "job_extra_directives": {...}}. A 'local' profile exists if none is given.""",
    ).tag(config=True)
    default_cluster_profile = Unicode("local").tag(config=True)
    cluster_environments = Dict(
        help="""Software environments clusters may run in (scheduler and workers use its Python):
        {"analysis": {"python": "/abs/venv/bin/python", "display_name": "AF analysis"}}. A profile lists
        the allowed ones (``environments``) and may name a ``default_environment``; without one, a
        cluster runs in the environment of the kernel that asks (if listed), else the server's.""",
    ).tag(config=True)
    dask_scheduler_address = Unicode(
        "", help="A Dask scheduler the session uses by default (shown in the status panel)."
    ).tag(config=True)
    cluster_idle_timeout = Float(3600.0, help="Seconds without tasks before a cluster is shut down (0: never).").tag(
        config=True
    )
    cluster_survive_restart = Bool(
        True,
        help="Leave clusters (their scheduler process and workers or batch jobs) running when the server "
        "stops, so the next server start reattaches to them; they still end after cluster_idle_timeout.",
    ).tag(config=True)
    cluster_worker_start_timeout = Float(
        600.0,
        help="Seconds a requested worker may take to connect before the cluster reports it, with the "
        "state of its batch job (a profile's worker_start_timeout overrides it).",
    ).tag(config=True)
    cluster_monitor_interval = Float(
        5.0, help="Seconds between checks of every cluster (scheduler alive, idle, workers, token refresh)."
    ).tag(config=True)
    cluster_token_refresh_margin = Float(
        300.0, help="Warn on a cluster when its workers' bearer token expires within this many seconds "
        "and no fresher token is available from the credential service."
    ).tag(config=True)

    # --- Publish ------------------------------------------------------------
    publish_defaults = Dict(
        default_value={},
        help="""Defaults for Publish: {rse, lifetime_days, scope, allow_no_lifetime,
        concurrency (parallel copies, 4), retry_seconds (how long an interrupted job
        keeps retrying Rucio, 300), max_files (per job, 100000), md5 (also compute
        md5, false: Rucio verifies adler32)}.""",
    ).tag(config=True)
    embargoed_scopes = Dict(
        default_value={},
        help="Scopes that require a group claim: {scope: group}, checked against the token's wlcg.groups/groups.",
    ).tag(config=True)

    # --- Server ---------------------------------------------------------------
    state_dir = Unicode(help="Where af-lab keeps its own state (job database, private runtime files).").tag(config=True)
    status_timeout = Float(3.0, help="Seconds a status probe may take per service.").tag(config=True)

    @default("cache_dir")
    def _default_cache_dir(self) -> str:
        return str(Path.home() / ".cache" / "af-lab" / "files")

    @default("state_dir")
    def _default_state_dir(self) -> str:
        return str(Path.home() / ".local" / "share" / "af-lab")

    @validate("rucio_instances")
    def _check_instances(self, proposal):
        instances = proposal["value"]
        seen = set()
        for inst in instances:
            name = inst.get("name")
            if not name or not inst.get("rucio_host"):
                raise ValueError("each Rucio instance needs 'name' and 'rucio_host'")
            if name in seen:
                raise ValueError(f"duplicate Rucio instance name {name!r}")
            seen.add(name)
            auth = inst.get("auth_type", "userpass")
            if auth not in ("userpass", "x509_proxy", "oidc"):
                raise ValueError(f"instance {name!r}: unknown auth_type {auth!r}")
        return instances

    def rucio_instance(self, name: str | None = None) -> dict:
        """The named instance, or the default one. Raises KeyError if unknown."""
        if not self.rucio_instances:
            raise KeyError("no Rucio instance is configured")
        wanted = name or self.default_rucio_instance or self.rucio_instances[0]["name"]
        for inst in self.rucio_instances:
            if inst["name"] == wanted:
                return inst
        raise KeyError(wanted)
