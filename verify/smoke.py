"""End to end: a document's chunk written through Neon and its vector written through the LB
can be found again, then both are removed. Only rows and points it wrote itself are touched
(they carry a fresh marker)."""

from __future__ import annotations

import random
import uuid

import psycopg
import requests

from components.qdrant.collection import QdrantApiError, QdrantRest
from components.qdrant.settings import CollectionSettings
from verify.report import Check

MARKER_KEY = "rag_verify_smoke"


def smoke_neon(database_url: str) -> Check:
    marker = uuid.uuid4().hex
    ids: dict[str, object] = {}
    try:
        with psycopg.connect(database_url, connect_timeout=10, autocommit=True) as conn:
            try:
                with conn.transaction():
                    ids["collection"] = conn.execute(
                        "INSERT INTO rag.collections (name, embedding_model, embedding_dim) "
                        "VALUES (%s, 'smoke', 1024) RETURNING id",
                        (f"{MARKER_KEY}-{marker}",),
                    ).fetchone()[0]
                    ids["document"] = conn.execute(
                        "INSERT INTO rag.documents (collection_id, source_path, content_hash) "
                        "VALUES (%s, %s, %s) RETURNING id",
                        (ids["collection"], f"smoke/{marker}", marker),
                    ).fetchone()[0]
                    conn.execute(
                        "INSERT INTO rag.chunks (document_id, chunk_index, content) VALUES (%s, 0, %s)",
                        (ids["document"], f"smoke test chunk {marker}"),
                    )
                # Read back over another connection: committed, not just seen by its writer.
                with psycopg.connect(database_url, connect_timeout=10) as reader:
                    found = reader.execute(
                        "SELECT count(*) FROM rag.chunks WHERE content LIKE %s", (f"%{marker}",)
                    ).fetchone()[0]
            finally:
                # Only what this check wrote, by id (chunks go with their document).
                if "document" in ids:
                    conn.execute("DELETE FROM rag.documents WHERE id = %s", (ids["document"],))
                if "collection" in ids:
                    conn.execute("DELETE FROM rag.collections WHERE id = %s", (ids["collection"],))
    except psycopg.Error as err:
        return Check("smoke.neon", False, " ".join(str(err).split())[:200])
    return Check("smoke.neon", found == 1, f"wrote a chunk, read it back {found} time(s), removed it")


def smoke_qdrant(url: str, api_key: str | None, collection: CollectionSettings) -> Check:
    api = QdrantRest(url, api_key)
    point = str(uuid.uuid4())
    vector = [random.random() + 0.01 for _ in range(collection.vector_size)]  # noqa: S311
    path = f"/collections/{collection.name}/points"
    try:
        api.result(
            "PUT",
            f"{path}?wait=true",
            {"points": [{"id": point, "vector": vector, "payload": {MARKER_KEY: point}}]},
        )
        try:
            hits = api.result("POST", f"{path}/search", {"vector": vector, "limit": 1, "with_payload": True})
        finally:
            api.result("POST", f"{path}/delete?wait=true", {"points": [point]})
    except (requests.RequestException, QdrantApiError) as err:
        return Check(f"smoke.qdrant.{collection.name}", False, str(err)[:200])
    top = hits[0]["id"] if hits else None
    return Check(
        f"smoke.qdrant.{collection.name}", top == point, f"wrote a point, nearest hit {top}, removed it"
    )
