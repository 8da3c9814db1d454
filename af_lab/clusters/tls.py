"""One certificate authority per cluster: scheduler, worker and client certificates for Dask's TLS.

Every cluster gets its own CA (its key is never written: nothing can sign more
certificates later) and three certificates signed by it, in ``<run_dir>/tls``
(0700; keys 0600). Dask's TLS requires a certificate from both sides of every
connection, so a client without this cluster's client certificate is refused
by the scheduler (and by the workers). The files:

``ca.pem``                          the CA certificate (scheduler, workers, clients)
``scheduler.pem``/``scheduler-key.pem``  the scheduler's
``worker.pem``/``worker-key.pem``        every worker's (shipped with batch jobs)
``client.pem``/``client-key.pem``        af-lab's and the user's kernels' (through the REST API)

Workers are configured through Dask's own configuration variables
(:func:`worker_env`), so the same job script works wherever the job finds its
files (an HTCondor scratch directory, a SLURM job's private directory).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from distributed.security import Security

VALID_DAYS = 365
ROLES = ("scheduler", "worker", "client")


@dataclass(frozen=True)
class TLSFiles:
    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    def cert(self, role: str) -> Path:
        return self.directory / f"{role}.pem"

    def key(self, role: str) -> Path:
        return self.directory / f"{role}-key.pem"

    def exists(self) -> bool:
        return self.ca.is_file() and all(self.cert(r).is_file() and self.key(r).is_file() for r in ROLES)

    def security(self, role: str = "client") -> Security:
        """A ``Security`` for ``role`` that refuses unencrypted connections."""
        args = {"tls_ca_file": str(self.ca), f"tls_{role}_cert": str(self.cert(role)),
                f"tls_{role}_key": str(self.key(role))}
        return Security(require_encryption=True, **args)

    def scheduler_args(self) -> list[str]:
        return ["--tls-ca-file", str(self.ca), "--tls-cert", str(self.cert("scheduler")),
                "--tls-key", str(self.key("scheduler"))]

    def worker_files(self) -> list[Path]:
        """What a batch job must carry for its worker to join."""
        return [self.ca, self.cert("worker"), self.key("worker")]


def worker_env(directory: str) -> dict[str, str]:
    """Dask configuration that makes a worker (or a scheduler) use TLS with the files in ``directory``.

    ``directory`` may be a shell expression (``$_CONDOR_SCRATCH_DIR``) in a job script.
    """
    return {
        "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True",
        "DASK_DISTRIBUTED__COMM__TLS__CA_FILE": f"{directory}/ca.pem",
        "DASK_DISTRIBUTED__COMM__TLS__WORKER__CERT": f"{directory}/worker.pem",
        "DASK_DISTRIBUTED__COMM__TLS__WORKER__KEY": f"{directory}/worker-key.pem",
    }


def create(directory: Path, cluster_id: str) -> TLSFiles:
    """Create the cluster's CA and certificates in ``directory`` (made 0700); idempotent."""
    files = TLSFiles(directory)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    if files.exists():
        return files
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=VALID_DAYS)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"af-lab cluster {cluster_id} CA")])
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    _write(files.ca, ca_cert.public_bytes(serialization.Encoding.PEM), 0o600)
    for role in ROLES:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"af-lab {role} {cluster_id}")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        _write(files.key(role), key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()), 0o600)
        _write(files.cert(role), cert.public_bytes(serialization.Encoding.PEM), 0o600)
    return files


def client_bundle(files: TLSFiles) -> dict[str, str]:
    """The kernel's share: CA, client certificate and key (PEM text) — for an authenticated user only."""
    return {"ca": files.ca.read_text(), "cert": files.cert("client").read_text(),
            "key": files.key("client").read_text()}


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, mode)
