"""Stand-in images for the end-to-end tests, built here from Debian packages (nothing can be
pulled): one base rootfs from `debootstrap` (sid: nginx 1.30, PostgreSQL 18 with pgvector,
pgbouncer, Prometheus 3.5, Alertmanager 0.33, Python), cached by its package list, and one
small image per stand-in on top of it (e2e/standins/<name>/Dockerfile), which the program's
image references are tagged to.

`python -m e2e.images DIR` builds them on the engine started under DIR (e2e/run.sh does).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import docker

from policies.program import repository

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STANDINS = HERE / "standins"
SUITE = "sid"
MIRROR = os.environ.get("MIRROR", "http://deb.debian.org/debian")
BASE_PACKAGES = (
    "bash", "curl", "python3", "python3-yaml", "python3-jwt", "python3-h2",
    "nginx-light", "libnginx-mod-stream", "wget", "postgresql-18", "postgresql-18-pgvector", "pgbouncer",
    "prometheus", "prometheus-alertmanager",
)  # fmt: skip
CACHE = Path(os.environ.get("RAG_E2E_CACHE", Path.home() / ".cache" / "rag-infra-e2e"))
# The fakes the Python stand-ins serve (copied into their images as tests/support).
SUPPORT = (
    "__init__.py", "fake_http.py", "fake_qdrant.py", "fake_neon.py", "fake_kong.py", "kong_jwt.py",
    "fake_metrics.py",
)  # fmt: skip

STAND_INS: dict[str, str] = {
    # image repository (the reference without its tag) -> stand-in (e2e/standins/<name>)
    "nginx": "nginx",
    "postgres": "postgres",
    "qdrant/qdrant": "qdrant",
    "kong": "kong",
    "ghcr.io/neondatabase/neon": "neon",
    "neondatabase/neon": "neon",
    "ghcr.io/neondatabase/compute-node-v17": "compute",
    "quay.io/minio/minio": "minio",
    "quay.io/minio/mc": "mc",
    "prom/prometheus": "prometheus",
    "prom/alertmanager": "alertmanager",
    "grafana/grafana": "grafana",
    "python": "python",
}
"""Every image the program can run, and what stands in for it: the real nginx, PostgreSQL,
Prometheus and Alertmanager (Debian sid's); Python servers speaking the fakes' APIs for the
rest."""


def stand_in_for(reference: str) -> str:
    """The stand-in's name for an image reference; a clear error for one with no stand-in."""
    try:
        return STAND_INS[repository(reference)]
    except KeyError:
        raise LookupError(
            f"no stand-in image for {reference!r}: add one to e2e/images.py STAND_INS"
        ) from None


def _digest(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.hexdigest()[:12]


def base_image(client: docker.DockerClient) -> str:
    """The base image, imported from the cached rootfs tar (debootstrap'ed when missing)."""
    key = _digest(SUITE.encode(), ",".join(BASE_PACKAGES).encode())
    tag = f"rag-infra-e2e-base:{key}"
    if client.images.list(name=tag):
        return tag
    tarball = CACHE / f"base-{key}.tar"
    if not tarball.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=CACHE) as work:
            rootfs = Path(work) / "rootfs"
            print(f"e2e: debootstrap {SUITE} with {len(BASE_PACKAGES)} packages (about a minute)", flush=True)
            subprocess.run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--include={','.join(BASE_PACKAGES)}",
                    SUITE,
                    rootfs,
                    MIRROR,
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            partial = tarball.with_suffix(".partial")
            subprocess.run(["tar", "-C", rootfs, "-cf", partial, "."], check=True)
            partial.rename(tarball)  # complete or absent: never a half-written cache entry
    with tarball.open("rb") as data:
        client.api.import_image_from_data(data.read(), repository=tag.split(":")[0], tag=key)
    return tag


def _context(work: Path) -> Path:
    """The build context every stand-in shares: e2e/standins (each Dockerfile takes its own
    folder and the shared lib) and the fakes, as `support`."""
    context = work / "context"
    shutil.copytree(STANDINS, context)
    (context / "support").mkdir()
    for file in SUPPORT:
        shutil.copy2(ROOT / "tests" / "support" / file, context / "support" / file)
    # The MinIO stand-in checks S3 signatures with the backup service's own signer (the unit
    # tests hold that one to botocore's).
    shutil.copy2(ROOT / "components" / "platform" / "objectstore.py", context / "support" / "sigv4.py")
    return context


def _context_digest(context: Path, base: str) -> str:
    parts = [base.encode()]
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        parts += [str(path.relative_to(context)).encode(), path.read_bytes()]
    return _digest(*parts)


def build_stand_ins(client: docker.DockerClient) -> dict[str, str]:
    """Every stand-in image (built when its files changed); name -> image tag."""
    base = base_image(client)
    built: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as work:
        context = _context(Path(work))
        digest = _context_digest(context, base)
        for name in sorted(set(STAND_INS.values())):
            tag = f"rag-infra-e2e-{name}:{digest}"
            if not client.images.list(name=tag):
                client.images.build(
                    path=str(context),
                    dockerfile=f"{name}/Dockerfile",
                    tag=tag,
                    buildargs={"BASE": base},
                    pull=False,
                    rm=True,
                    forcerm=True,
                )
            built[name] = tag
    return built


def tag_as(client: docker.DockerClient, built: dict[str, str], reference: str) -> str:
    """Make `reference` name its stand-in on this engine (the harness's `docker pull`)."""
    image = client.images.get(built[stand_in_for(reference)])
    name = reference.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    repo, tag = (name, "latest") if ":" not in last else name.rsplit(":", 1)
    image.tag(repo, tag)
    return image.id


if __name__ == "__main__":
    from e2e.engine import start

    client = start(Path(sys.argv[1]).resolve())
    for stand_in, image_tag in build_stand_ins(client).items():
        print(f"{stand_in}: {image_tag}")
