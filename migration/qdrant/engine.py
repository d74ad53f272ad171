"""Single-node Qdrant -> cluster copy of one collection: streamed, resumable, verified.

Unlike qdrant-client's `migrate()` it never deletes or recreates a target collection: a missing
target is created with the source's vector configuration and the given HA parameters; an
existing one must have the same vector configuration, or the run fails before writing.

Resume state is one point in the bookkeeping collection `_rag_migration_offsets` of the target
(as Qdrant's official migration tool keeps `_migration_offsets`): the scroll offset after the
last batch that was upserted with `wait=true`. A batch re-sent after a kill overwrites the
same ids, so nothing is lost or doubled. The point (and the collection, once empty) is removed
after a verified run.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from components.platform.tls import ca_bundle_file

OFFSETS_COLLECTION = "_rag_migration_offsets"
RETRIES = 5
GRPC_PORT = 6334


class QdrantMigrationError(RuntimeError):
    """A one-line reason the migration cannot go on; it names the side and the collection."""


class QdrantMigrationInterruptedError(QdrantMigrationError):
    """Stopped on request between batches; the checkpoint names the last batch written."""


@dataclass
class QdrantMigrationReport:
    collection: str
    target_collection: str
    source_points: int = 0
    target_points: int = 0
    copied_points: int = 0
    batches: int = 0
    sample_checked: int = 0
    sample_mismatches: int = 0
    recall_at_10: float = 0.0
    payloads_match: bool = False
    created_target: bool = False
    duration_s: float = 0.0
    differences: list[str] = field(default_factory=list)
    """What verification found different, first few cases named (point ids, counts)."""

    @property
    def ok(self) -> bool:
        return (
            self.source_points == self.target_points
            and self.sample_mismatches == 0
            and self.recall_at_10 == 1.0
            and self.payloads_match
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok, "duration_s": round(self.duration_s, 3)}


Progress = Callable[[str, int, int, float], None]
"""progress(collection, points_copied, source_points, points_per_second)"""


def open_client(
    location: str, api_key: str | None, side: str, ca_certificate: str | None = None
) -> QdrantClient:
    """A URL (REST, or gRPC on port 6334 / grpc://) or a local-mode path (or :memory:);
    `ca_certificate` (PEM) is trusted for an https:// URL besides the system's CAs."""
    with warnings.catch_warnings():
        # A key over plain HTTP is how the stack's private network works (TLS, when wanted, is
        # the LB's job); the client's warning about it would only break one-line output.
        warnings.filterwarnings("ignore", message="Api key is used with an insecure connection")
        return _open_client(location, api_key, side, ca_certificate)


URL_SCHEMES = ("http", "https", "grpc", "grpcs")
# `http//host:6333`, `http:/host`, `localhost:6333`: a URL with a typo, not a folder name.
_URL_LIKE = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*:|(?:https?|grpcs?)(?:/|$))")


def _local_store(location: str, side: str) -> Path:
    """The local-mode store at `location`; anything that is neither a URL nor a store is refused,
    since QdrantClient(path=…) would quietly create a new store there."""
    path = Path(location)
    if (path / "meta.json").exists():
        return path
    schemes = ", ".join(f"{scheme}://" for scheme in URL_SCHEMES)
    if "://" in location or _URL_LIKE.match(location):
        raise QdrantMigrationError(f"{side}: {location!r} is not a URL ({schemes}) nor a local-mode store")
    if side == "source":
        # Never create anything on the source side.
        raise QdrantMigrationError(f"source: no Qdrant local-mode store at {location}")
    if not path.parent.is_dir() or (path.exists() and any(path.iterdir())):
        raise QdrantMigrationError(
            f"target: {location} is not a URL ({schemes}), a local-mode store, nor a new folder in an "
            "existing one"
        )
    return path


def _open_client(location: str, api_key: str | None, side: str, ca_certificate: str | None) -> QdrantClient:
    parts = urlsplit(location)
    if parts.scheme in URL_SCHEMES and parts.hostname:
        secure = parts.scheme in ("https", "grpcs")
        if parts.scheme.startswith("grpc") or parts.port == GRPC_PORT:
            return QdrantClient(
                host=parts.hostname,
                grpc_port=parts.port or GRPC_PORT,
                prefer_grpc=True,
                https=secure,
                api_key=api_key,
                check_compatibility=False,
                timeout=60,
            )
        # Extra arguments reach the REST client's httpx.Client: `verify` is its CA bundle.
        verify = ca_bundle_file(ca_certificate)
        return QdrantClient(
            url=location, api_key=api_key, check_compatibility=False, timeout=60, verify=verify
        )
    if location == ":memory:":
        return QdrantClient(location=":memory:")
    path = _local_store(location, side)
    try:
        return QdrantClient(path=str(path))
    except RuntimeError as err:  # the store is locked by another client
        raise QdrantMigrationError(f"{side}: {err}") from None


def _describe(err: Exception) -> str:
    if isinstance(err, UnexpectedResponse):
        if err.status_code in (401, 403):
            return f"the API key was refused ({err.status_code})"
        return f"answered {err.status_code}: {err.content[:200].decode(errors='replace')}"
    if isinstance(err, ResponseHandlingException):
        return f"cannot reach Qdrant: {type(err.source).__name__}: {err.source}"
    code, details = getattr(err, "code", None), getattr(err, "details", None)
    if callable(code) and callable(details):  # a gRPC error: its status and text, on one line
        return f"gRPC {code().name}: {' '.join(str(details()).split())}"
    return f"{type(err).__name__}: {err}".splitlines()[0]


def _transient(err: Exception) -> bool:
    if isinstance(err, UnexpectedResponse):
        return err.status_code is not None and (err.status_code >= 500 or err.status_code == 429)
    if isinstance(err, ResponseHandlingException):
        return True
    return "UNAVAILABLE" in str(err) or "DEADLINE_EXCEEDED" in str(err) or "Please retry" in str(err)


def with_retries(side: str, what: str, call: Callable[[], Any], attempts: int = RETRIES) -> Any:
    """Retry transient errors with exponential backoff; anything else fails at once, named."""
    retrying = Retrying(
        retry=retry_if_exception(_transient),
        wait=wait_exponential(multiplier=0.2),
        stop=stop_after_attempt(attempts),
        reraise=True,
    )
    try:
        return retrying(call)
    except Exception as err:
        raise QdrantMigrationError(f"{side}: {what}: {_describe(err)}") from None


def _vector_signature(params: models.CollectionParams) -> dict[str, Any]:
    """Vector names, sizes and distances (and sparse names): what must match on both sides."""
    vectors = params.vectors
    if isinstance(vectors, models.VectorParams):
        dense = {"": (vectors.size, str(vectors.distance))}
    else:
        dense = {name: (v.size, str(v.distance)) for name, v in (vectors or {}).items()}
    sparse = sorted((params.sparse_vectors or {}).keys())
    return {"dense": dense, "sparse": sparse}


def _describe_signature(signature: dict[str, Any]) -> str:
    dense = ", ".join(
        f"{name or '(default)'}: size {size} {dist}" for name, (size, dist) in signature["dense"].items()
    )
    return dense + (f"; sparse {', '.join(signature['sparse'])}" if signature["sparse"] else "")


def _state_id(source_collection: str, target_collection: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"rag-infra/{source_collection}->{target_collection}"))


class _Checkpoint:
    """The resume offset of one source -> target pair, stored in the target."""

    def __init__(self, client: QdrantClient, source_collection: str, target_collection: str) -> None:
        self.client = client
        self.point_id = _state_id(source_collection, target_collection)
        self.source_collection, self.target_collection = source_collection, target_collection

    def load(self) -> dict[str, Any] | None:
        if not self.client.collection_exists(OFFSETS_COLLECTION):
            return None
        found = self.client.retrieve(OFFSETS_COLLECTION, [self.point_id], with_payload=True)
        return dict(found[0].payload) if found else None

    def save(self, offset: Any, copied: int, done: bool) -> None:
        if not self.client.collection_exists(OFFSETS_COLLECTION):
            self.client.create_collection(OFFSETS_COLLECTION, vectors_config={})
        payload = {
            "source": self.source_collection,
            "target": self.target_collection,
            "offset": offset,
            "copied": copied,
            "done": done,
            "updated_at": time.time(),
        }
        self.client.upsert(
            OFFSETS_COLLECTION, [models.PointStruct(id=self.point_id, vector={}, payload=payload)], wait=True
        )

    def clear(self) -> None:
        if not self.client.collection_exists(OFFSETS_COLLECTION):
            return
        self.client.delete(OFFSETS_COLLECTION, models.PointIdsList(points=[self.point_id]), wait=True)
        if self.client.count(OFFSETS_COLLECTION, exact=True).count == 0:
            self.client.delete_collection(OFFSETS_COLLECTION)


class _Reservoir:
    """A uniform sample of ids seen one by one (memory is the sample, not the collection)."""

    def __init__(self, size: int, seed: int = 1) -> None:
        self.size = size
        self.rng = random.Random(seed)  # noqa: S311 (sampling, not security)
        self.sample: list[Any] = []
        self.seen = 0

    def add(self, point_id: Any) -> None:
        self.seen += 1
        if len(self.sample) < self.size:
            self.sample.append(point_id)
        else:
            slot = self.rng.randrange(self.seen)
            if slot < self.size:
                self.sample[slot] = point_id


def _payload_digest(
    client: QdrantClient, collection: str, side: str, reservoir: _Reservoir | None = None
) -> str:
    """An order-independent digest of every point's id and payload (vectors are left to the
    sample and recall checks: reading them all would double the migration's reads). The ids
    seen go into `reservoir` too, so the same pass draws the verification sample."""
    total, offset = 0, None
    while True:
        records, offset = with_retries(
            side,
            "scroll payloads",
            lambda o=offset: client.scroll(
                collection, limit=1000, offset=o, with_payload=True, with_vectors=False
            ),
        )
        for record in records:
            if reservoir is not None:
                reservoir.add(record.id)
            text = json.dumps([str(record.id), record.payload], sort_keys=True, default=str)
            total += int.from_bytes(hashlib.blake2b(text.encode(), digest_size=16).digest(), "big")
        if offset is None:
            return f"{total % (1 << 128):032x}"


def _same_vector(a: Any, b: Any, cosine: frozenset[str] = frozenset(), name: str = "") -> bool:
    """Equal vectors; for Cosine vectors equal directions (Qdrant stores them normalised, and
    local mode returns them normalised or not depending on whether it reloaded from disk)."""
    if isinstance(a, dict) or isinstance(b, dict):
        return (
            isinstance(a, dict)
            and isinstance(b, dict)
            and a.keys() == b.keys()
            and all(_same_vector(a[k], b[k], cosine, k) for k in a)
        )
    if isinstance(a, models.SparseVector) or isinstance(b, models.SparseVector):
        return (
            isinstance(a, models.SparseVector)
            and isinstance(b, models.SparseVector)
            and list(a.indices) == list(b.indices)
            and np.allclose(a.values, b.values, rtol=0, atol=1e-6)
        )
    if a is None or b is None:
        return a is b
    left, right = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    if left.shape != right.shape:
        return False
    if name in cosine:
        left, right = _unit(left), _unit(right)
    # Normalising an already normalised float32 vector may move its last bits: a tolerance.
    return bool(np.allclose(left, right, rtol=0, atol=1e-6))


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


def _first_dense_vector(vector: Any) -> tuple[str | None, list[float] | None]:
    if isinstance(vector, dict):
        for name, value in vector.items():
            if isinstance(value, list) and value and not isinstance(value[0], list):
                return name, value
        return None, None
    return None, vector


def verify(
    source: QdrantClient,
    target: QdrantClient,
    source_collection: str,
    target_collection: str,
    report: QdrantMigrationReport,
    sample_size: int = 100,
    queries: int = 10,
    sample: list[Any] | None = None,
) -> None:
    """Counts, a sample of points compared field by field, and recall@10 of exact searches.

    `sample`: ids already drawn uniformly from the whole source (by a full copy); otherwise they
    are drawn here, in the pass that digests the source's payloads."""
    report.differences = []
    report.source_points = with_retries(
        "source", "count", lambda: source.count(source_collection, exact=True).count
    )
    report.target_points = with_retries(
        "target", "count", lambda: target.count(target_collection, exact=True).count
    )
    if report.source_points != report.target_points:
        report.differences.append(f"points: source {report.source_points}, target {report.target_points}")
    # Every payload, not just the sample's: an id-and-payload digest of each side. Without a
    # sample from the copy, the source's pass draws one.
    reservoir = _Reservoir(sample_size) if sample is None else None
    report.payloads_match = _payload_digest(
        source, source_collection, "source", reservoir
    ) == _payload_digest(target, target_collection, "target")
    if not report.payloads_match:
        report.differences.append("ids or payloads differ (digest of every point)")
    ids = sample if reservoir is None else reservoir.sample
    if not ids:
        report.recall_at_10 = 1.0
        return
    src_points = {
        p.id: p
        for p in with_retries(
            "source",
            "retrieve sample",
            lambda: source.retrieve(source_collection, ids, with_payload=True, with_vectors=True),
        )
    }
    tgt_points = {
        p.id: p
        for p in with_retries(
            "target",
            "retrieve sample",
            lambda: target.retrieve(target_collection, ids, with_payload=True, with_vectors=True),
        )
    }
    signature = _vector_signature(source.get_collection(source_collection).config.params)
    cosine = frozenset(
        name for name, (_, distance) in signature["dense"].items() if distance.lower() == "cosine"
    )
    report.sample_checked = len(ids)
    mismatches = []
    for point_id in ids:
        if point_id not in tgt_points:
            mismatches.append(f"point {point_id}: missing in target")
        elif src_points[point_id].payload != tgt_points[point_id].payload:
            mismatches.append(f"point {point_id}: payload differs")
        elif not _same_vector(src_points[point_id].vector, tgt_points[point_id].vector, cosine):
            mismatches.append(f"point {point_id}: vector differs")
    report.sample_mismatches = len(mismatches)
    report.differences.extend(mismatches[:5])
    report.recall_at_10 = _recall_at_10(
        source, target, source_collection, target_collection, ids[:queries], src_points
    )
    if report.recall_at_10 != 1.0:
        report.differences.append(f"recall@10 {report.recall_at_10} (exact searches disagree)")


def _recall_at_10(
    source: QdrantClient,
    target: QdrantClient,
    source_collection: str,
    target_collection: str,
    ids: list[Any],
    src_points: dict[Any, Any],
) -> float:
    """Mean share of the source's exact top 10 that the target returns too, over `ids` as queries."""
    recalls = []
    exact = models.SearchParams(exact=True)
    with warnings.catch_warnings():
        # Local mode searches exactly anyway and warns that `search_params` has no effect.
        warnings.filterwarnings("ignore", message="Local mode performs exact")
        for point_id in ids:
            using, vector = _first_dense_vector(src_points[point_id].vector)
            if vector is None:
                continue
            expected = with_retries(
                "source",
                "query",
                lambda v=vector, u=using: source.query_points(
                    source_collection, query=v, using=u, limit=10, search_params=exact, with_payload=False
                ),
            )
            found = with_retries(
                "target",
                "query",
                lambda v=vector, u=using: target.query_points(
                    target_collection, query=v, using=u, limit=10, search_params=exact, with_payload=False
                ),
            )
            want = {p.id for p in expected.points}
            recalls.append(len(want & {p.id for p in found.points}) / max(len(want), 1))
    return round(sum(recalls) / len(recalls), 4) if recalls else 1.0


def _prepare_target(
    source: QdrantClient,
    target: QdrantClient,
    source_collection: str,
    target_collection: str,
    ha: dict[str, int | None],
) -> bool:
    """Check or create the target collection before anything is written. True if created."""
    if not with_retries(
        "source", f"collection {source_collection}", lambda: source.collection_exists(source_collection)
    ):
        raise QdrantMigrationError(f"source: collection {source_collection} does not exist")
    source_params = with_retries(
        "source", f"collection {source_collection}", lambda: source.get_collection(source_collection)
    ).config.params
    wanted = _vector_signature(source_params)
    if with_retries(
        "target", f"collection {target_collection}", lambda: target.collection_exists(target_collection)
    ):
        found = _vector_signature(
            with_retries(
                "target", f"collection {target_collection}", lambda: target.get_collection(target_collection)
            ).config.params
        )
        if found != wanted:
            raise QdrantMigrationError(
                f"target: collection {target_collection} has vectors ({_describe_signature(found)}) "
                f"but the source has ({_describe_signature(wanted)}); refusing to write"
            )
        return False
    extra = {key: value for key, value in ha.items() if value is not None}
    with_retries(
        "target",
        f"create collection {target_collection}",
        lambda: target.create_collection(
            target_collection,
            vectors_config=source_params.vectors,
            sparse_vectors_config=source_params.sparse_vectors,
            **extra,
        ),
    )
    return True


def migrate_collection(
    source_location: str,
    target_location: str,
    collection: str,
    target_collection: str | None = None,
    batch_size: int = 512,
    shard_number: int | None = None,
    replication_factor: int | None = None,
    write_consistency_factor: int | None = None,
    source_api_key: str | None = None,
    target_api_key: str | None = None,
    target_ca_certificate: str | None = None,
    progress: Progress | None = None,
    sample_size: int = 100,
    stop: threading.Event | None = None,
) -> QdrantMigrationReport:
    """Copy `collection` from source to target (scroll order, every vector and payload), verify."""
    if batch_size < 1:
        raise QdrantMigrationError(f"batch size must be at least 1, got {batch_size}")
    target_collection = target_collection or collection
    if source_location == target_location and collection == target_collection:
        raise QdrantMigrationError("source and target are the same collection")
    progress = progress or (lambda *_: None)
    started = time.monotonic()
    report = QdrantMigrationReport(collection=collection, target_collection=target_collection)
    source = open_client(source_location, source_api_key, "source")
    try:
        target = open_client(target_location, target_api_key, "target", target_ca_certificate)
        try:
            ha = {
                "shard_number": shard_number,
                "replication_factor": replication_factor,
                "write_consistency_factor": write_consistency_factor,
            }
            report.created_target = _prepare_target(source, target, collection, target_collection, ha)
            total = with_retries("source", "count", lambda: source.count(collection, exact=True).count)
            checkpoint = _Checkpoint(target, collection, target_collection)
            state = with_retries("target", "read checkpoint", checkpoint.load)
            target_count = with_retries(
                "target", "count", lambda: target.count(target_collection, exact=True).count
            )
            if state is None and target_count and not report.created_target:
                if target_count != total:
                    raise QdrantMigrationError(
                        f"target: collection {target_collection} already holds {target_count} points that "
                        "this migration did not write; migrate into an empty collection"
                    )
                # A finished earlier run (its checkpoint was cleaned up): verify, write nothing.
                verify(source, target, collection, target_collection, report, sample_size)
                report.duration_s = time.monotonic() - started
                return report
            offset = state["offset"] if state else None
            copied = int(state["copied"]) if state else 0
            done = bool(state["done"]) if state else False
            if state is None:
                with_retries("target", "write checkpoint", lambda: checkpoint.save(None, 0, False))
            resumed_from = copied
            # A run that copies everything sees every id: draw the verification sample on the way.
            reservoir = _Reservoir(sample_size) if state is None else None
            while not done:
                if stop is not None and stop.is_set():
                    raise QdrantMigrationInterruptedError(
                        f"stopped between batches after {copied} of {total} points; the checkpoint is "
                        "saved: run the same command again to resume"
                    )
                records, next_offset = with_retries(
                    "source",
                    "scroll",
                    lambda o=offset: source.scroll(
                        collection, limit=batch_size, offset=o, with_payload=True, with_vectors=True
                    ),
                )
                if records:
                    # The source client already validated these records; skip re-validating
                    # 1024 floats per point.
                    points = [
                        models.PointStruct.model_construct(id=r.id, vector=r.vector or {}, payload=r.payload)
                        for r in records
                    ]
                    if reservoir is not None:
                        for record in records:
                            reservoir.add(record.id)
                    with_retries(
                        "target", "upsert", lambda p=points: target.upsert(target_collection, p, wait=True)
                    )
                copied += len(records)
                report.batches += 1
                done = next_offset is None
                offset = next_offset
                with_retries(
                    "target",
                    "write checkpoint",
                    lambda o=offset, c=copied, d=done: checkpoint.save(o, c, d),
                )
                elapsed = max(time.monotonic() - started, 1e-6)
                progress(collection, copied, total, (copied - resumed_from) / elapsed)
            report.copied_points = copied - resumed_from
            sample = reservoir.sample if reservoir is not None and report.batches else None
            verify(source, target, collection, target_collection, report, sample_size, sample=sample)
            if report.ok:
                with_retries("target", "clean up checkpoint", checkpoint.clear)
        finally:
            target.close()
    finally:
        source.close()
    report.duration_s = time.monotonic() - started
    return report
