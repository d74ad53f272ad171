"""The failover drill: under load, stop one member of a quorum through its host's Docker API,
measure what clients saw, restart it (always), and check that nothing was lost.

- Qdrant: searches through the LB from a few threads while the last node is down (node 0 is
  the peer the others bootstrap from after a restart); reports the failed searches, the time
  until searches succeed again (the plan: failover < 5 s), the time after the restart until
  every peer is back and every replica `Active`, and the point counts before and after (the
  plan: zero data loss).
- Neon: with one safekeeper stopped, writes go on with a majority: rows written through the
  compute while it is down are all there after it is back. It needs three safekeepers or more
  (with one, stopping it stops the writes; the drill says so instead of running).
- Neon's object storage: with its last MinIO node stopped, the first node keeps reporting a
  write quorum (`/minio/health/cluster`, MinIO's own verdict over every drive it can reach)
  for the whole time; then the time until the stopped node is back in the store. It needs a
  store that survives one node (three nodes or more); otherwise the drill says so.
- Neon's compute: its task stopped wherever Swarm runs it; reports how long until the database
  URL (every host, libpq multi-host) answers again, from the task Swarm starts in its place.
  The compute holds no data (the safekeepers and the pageserver do, which the safekeeper drill
  checks), so this one measures availability only.

The rows and points it reads are counted, never changed; the rows it writes go to a table of
its own, removed at the end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
import requests

from components.neon.minio_gate import health as minio_health
from components.neon.object_storage import writes_survive_losing_any_host
from components.neon.settings import ObjectStorageSettings
from components.platform.engine import engine, service_tasks
from components.platform.hosts import round_robin
from components.qdrant.collection import QdrantApiError, QdrantRest, replica_placement, unhealthy_replicas
from components.qdrant.settings import CollectionSettings
from verify.report import Check

RECOVERY_LIMIT_S = 5.0
"""The plan's failover criterion."""
OBJECT_STORAGE_HOLD_S = 10.0
"""How long the object storage drill watches the store with one node down."""
OBJECT_STORAGE_RECOVERY_LIMIT_S = 120.0
"""How long the stopped MinIO node may take to be back (Swarm's restart delay, then the start)."""
COMPUTE_RECOVERY_LIMIT_S = 120.0
"""How long the compute may be away while Swarm starts a new task (restart delay, then
compute_ctl syncs the safekeepers and fetches a basebackup): not one of the plan's criteria
(the plan has one compute), the bound the README states."""
SCRATCH_TABLE = "verify_failover_writes"
_CREATE = f"CREATE TABLE IF NOT EXISTS {SCRATCH_TABLE} (n int PRIMARY KEY)"
_INSERT = f"INSERT INTO {SCRATCH_TABLE} VALUES (%s)"  # noqa: S608 (a constant name)
_COUNT = f"SELECT count(*) FROM {SCRATCH_TABLE}"  # noqa: S608 (a constant name)
_DROP = f"DROP TABLE IF EXISTS {SCRATCH_TABLE}"


@dataclass(frozen=True)
class Member:
    """One container of the stack and the Docker host it runs on."""

    host: str
    container: str


def member(hosts: Sequence[str], prefix: str, index: int, count: int) -> Member:
    """Where quorum member `index` of `count` runs: the program places them round-robin over
    the hosts and names them `<project>-<stack>-<role>-<index>`."""
    return Member(hosts[round_robin(count, len(hosts))[index]], f"{prefix}-{index}")


def running_task(hosts: Sequence[str], service: str) -> Member:
    """Where a service's task runs now (a part Swarm may have moved): the first host whose
    engine has a running container of it."""
    for host in dict.fromkeys(hosts):
        if service_tasks(engine(host), service):
            return Member(host, service)
    raise LookupError(f"no running task of {service} on any host")


@contextmanager
def stopped(target: Member) -> Iterator[float]:
    """The member stopped for the duration of the block (yields when it stopped); a container is
    started again afterwards whatever happens in the block, a service's task is replaced by
    Swarm (restart policy) as soon as it can."""
    client = engine(target.host)
    tasks = service_tasks(client, target.container)
    if tasks:
        # A Swarm service's task: Swarm replaces it by itself, on the node it is pinned to.
        # Starting the stopped one again would run a second process on the member's volume.
        tasks[0].stop(timeout=10)
        yield time.monotonic()
        return
    container = client.containers.get(target.container)
    container.stop(timeout=10)
    try:
        yield time.monotonic()
    finally:
        container.start()


class SearchLoad:
    """Searches through the LB from `threads` threads, each outcome timed, until stopped."""

    def __init__(
        self, url: str, api_key: str | None, collection: CollectionSettings, threads: int = 4
    ) -> None:
        self._url = f"{url}/collections/{collection.name}/points/search"
        self._body = {"vector": [0.5] * collection.vector_size, "limit": 5}
        self._headers = {"api-key": api_key or ""}
        self._stop = threading.Event()
        self.outcomes: list[tuple[float, bool]] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self) -> SearchLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _run(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            try:
                answer = session.post(self._url, json=self._body, headers=self._headers, timeout=10)
                ok = answer.status_code == 200
            except requests.RequestException:
                ok = False
            with self._lock:
                self.outcomes.append((time.monotonic(), ok))
            time.sleep(0.02)

    def since(self, start: float) -> list[tuple[float, bool]]:
        with self._lock:
            return [outcome for outcome in self.outcomes if outcome[0] >= start]


def recovery_seconds(outcomes: Sequence[tuple[float, bool]], start: float) -> float:
    """Time from `start` until searches succeed again: the first success after the last failure
    (0 when nothing failed)."""
    failures = [at for at, ok in outcomes if not ok]
    if not failures:
        return 0.0
    after = [at for at, ok in outcomes if ok and at > failures[-1]]
    return (after[0] if after else float("inf")) - start


def _points(api: QdrantRest, name: str) -> int:
    return api.result("GET", f"/collections/{name}")["points_count"]


def _not_active(api: QdrantRest, collections: Sequence[CollectionSettings]) -> int | None:
    """How many replicas are not Active (None when the cluster does not say)."""
    try:
        return sum(
            len(unhealthy_replicas(replica_placement(api.result("GET", f"/collections/{c.name}/cluster"))))
            for c in collections
        )
    except (requests.RequestException, QdrantApiError):
        return None


def _all_active(api: QdrantRest, nodes: int, collections: Sequence[CollectionSettings]) -> bool:
    if len(api.result("GET", "/cluster").get("peers") or {}) != nodes:
        return False
    return all(
        not unhealthy_replicas(replica_placement(api.result("GET", f"/collections/{c.name}/cluster")))
        for c in collections
    )


def qdrant_failover(
    url: str,
    api_key: str | None,
    nodes: int,
    collections: Sequence[CollectionSettings],
    target: Member,
    outage_s: float = 10.0,
    recover_timeout_s: float = 120.0,
) -> list[Check]:
    """The Qdrant drill; one check per criterion."""
    api = QdrantRest(url, api_key)
    try:
        before = {c.name: _points(api, c.name) for c in collections}
    except (requests.RequestException, QdrantApiError) as err:
        return [Check("failover.qdrant", False, f"cannot count points before the drill: {err}")]
    with SearchLoad(url, api_key, collections[0]) as load:
        with stopped(target) as down_at:
            # What the cluster made of it: the stopped node's replicas are no longer Active.
            # Sampled through the outage: Swarm may replace a service's task before it ends.
            degraded = 0
            while time.monotonic() - down_at < outage_s:
                degraded = max(degraded, _not_active(api, collections) or 0)
                time.sleep(0.5)
            during = load.since(down_at)
        restarted_at = time.monotonic()
        active_after = None
        while time.monotonic() - restarted_at < recover_timeout_s:
            try:
                if _all_active(api, nodes, collections):
                    active_after = time.monotonic() - restarted_at
                    break
            except (requests.RequestException, QdrantApiError):
                pass
            time.sleep(0.5)
    failed = sum(not ok for _, ok in during)
    recovery = recovery_seconds(during, down_at)
    try:
        after: dict[str, int] | str = {c.name: _points(api, c.name) for c in collections}
    except (requests.RequestException, QdrantApiError) as err:
        after = f"not countable ({err})"
    return [
        Check(
            "failover.qdrant.searches",
            recovery < RECOVERY_LIMIT_S,
            f"{target.container} stopped {outage_s:g} s: {failed} of {len(during)} searches failed, "
            f"searches succeed again {recovery:.2f} s after the stop (plan < {RECOVERY_LIMIT_S:g} s)",
        ),
        Check(
            "failover.qdrant.replicas",
            active_after is not None,
            f"{degraded} replica(s) not Active during the outage; every peer back and every replica "
            f"Active {active_after:.1f} s after the restart"
            if active_after is not None
            else f"replicas not all Active {recover_timeout_s:g} s after the restart",
        ),
        Check(
            "failover.qdrant.points",
            after == before,
            f"points before {before}, after {after}" + ("" if after == before else ": points lost"),
        ),
    ]


def safekeeper_failover(database_url: str, safekeepers: int, target: Member, rows: int = 50) -> list[Check]:
    """The safekeeper drill: writes through the compute while one safekeeper is down."""
    if safekeepers < 3:
        return [
            Check(
                "failover.safekeeper",
                True,
                f"not run: with {safekeepers} safekeeper(s) there is no majority without one",
            )
        ]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(_DROP)
        conn.execute(_CREATE)
        try:
            failed = 0
            with stopped(target):
                for n in range(rows):
                    try:
                        conn.execute(_INSERT, (n,))
                    except psycopg.Error:
                        failed += 1
            kept = conn.execute(_COUNT).fetchone()[0]
        finally:
            conn.execute(_DROP)
    return [
        Check(
            "failover.safekeeper",
            failed == 0 and kept == rows,
            f"{target.container} stopped: {rows - failed} of {rows} writes committed, "
            f"{kept} rows there after",
        )
    ]


def object_storage_failover(
    status_urls: dict[str, str],
    store: ObjectStorageSettings,
    target: Member,
    hold_s: float = OBJECT_STORAGE_HOLD_S,
    limit_s: float = OBJECT_STORAGE_RECOVERY_LIMIT_S,
) -> list[Check]:
    """The object storage drill: the last MinIO node stopped; node 0 must keep a write quorum,
    and the stopped node must come back in the store."""
    nodes = store.nodes
    if not writes_survive_losing_any_host({str(i): store.drives_per_node for i in range(nodes)}):
        return [
            Check(
                "failover.object-storage",
                True,
                f"not run: a store of {nodes} MinIO node(s) x {store.drives_per_node} drive(s) stops "
                "writing without one of them",
            )
        ]
    survivor, returning = status_urls["minio0"], status_urls[f"minio{nodes - 1}"]
    answers: list[int | str] = []
    with stopped(target) as stopped_at:
        while time.monotonic() - stopped_at < hold_s:
            answers.append(minio_health(survivor, timeout=3)[0])
            time.sleep(0.5)
        back_after = None
        while (waited := time.monotonic() - stopped_at) < limit_s:
            if minio_health(returning, timeout=3)[0] == 200:
                back_after = waited
                break
            time.sleep(0.5)
    refused = [a for a in answers if a != 200]
    saw = f"{target.container} stopped: node 0 reported a write quorum in {len(answers) - len(refused)} "
    saw += f"of {len(answers)} probes over {hold_s:g} s"
    saw += f" (otherwise {', '.join(sorted(set(map(str, refused))))})" if refused else ""
    saw += (
        f"; back in the store after {back_after:.1f} s"
        if back_after is not None
        else (f"; not back within {limit_s:g} s")
    )
    return [Check("failover.object-storage", bool(answers) and not refused and back_after is not None, saw)]


def compute_failover(
    database_url: str, target: Member, limit_s: float = COMPUTE_RECOVERY_LIMIT_S
) -> list[Check]:
    """The compute drill: its task stopped, the time until the database answers again."""
    back_after = None
    with stopped(target) as stopped_at:
        while (waited := time.monotonic() - stopped_at) < limit_s:
            try:
                with psycopg.connect(database_url, connect_timeout=3, autocommit=True) as conn:
                    conn.execute("SELECT 1")
                back_after = waited
                break
            except psycopg.Error:
                time.sleep(0.5)
    if back_after is None:
        return [
            Check("failover.compute", False, f"{target.container} stopped: not back within {limit_s:g} s")
        ]
    return [
        Check(
            "failover.compute",
            True,
            f"{target.container} stopped: the database answered again after {back_after:.1f} s "
            f"(limit {limit_s:g} s)",
        )
    ]
