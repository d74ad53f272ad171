"""Local-mode Qdrant stores standing in for the old single node."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from qdrant_client import QdrantClient, models


def make_store(
    path: Path,
    collection: str = "docs_index_mxbai",
    points: int = 3087,
    dim: int = 1024,
    named: bool = False,
    batch: int = 500,
    seed: int = 3,
) -> None:
    """A persisted local-mode store with payloads; `named` adds a second dense and a sparse vector."""
    rng = np.random.default_rng(seed)
    client = QdrantClient(path=str(path))
    try:
        if named:
            client.create_collection(
                collection,
                vectors_config={
                    "text": models.VectorParams(size=dim, distance=models.Distance.COSINE),
                    "title": models.VectorParams(size=16, distance=models.Distance.DOT),
                },
                sparse_vectors_config={"keywords": models.SparseVectorParams()},
            )
        else:
            client.create_collection(
                collection, vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE)
            )
        for start in range(0, points, batch):
            ids = range(start, min(start + batch, points))
            vectors = rng.standard_normal((len(ids), dim)).astype(np.float32)
            structs = []
            for row, point_id in enumerate(ids):
                payload = {
                    "source_path": f"docs/page-{point_id % 220}.md",
                    "chunk_index": point_id // 220,
                    "tags": ["rag"],
                }
                if named:
                    vector = {
                        "text": vectors[row].tolist(),
                        "title": rng.standard_normal(16).astype(np.float32).tolist(),
                        "keywords": models.SparseVector(
                            indices=[point_id % 50, 100 + point_id % 7], values=[0.5, 1.5]
                        ),
                    }
                else:
                    vector = vectors[row].tolist()
                structs.append(models.PointStruct(id=point_id, vector=vector, payload=payload))
            client.upsert(collection, structs, wait=True)
    finally:
        client.close()


def snapshot(path: Path, collection: str) -> dict:
    """A digest of every point (id -> payload and vectors), to prove the source was not changed."""
    client = QdrantClient(path=str(path))
    try:
        result, offset = {}, None
        while True:
            records, offset = client.scroll(
                collection, limit=1000, offset=offset, with_payload=True, with_vectors=True
            )
            for r in records:
                vector = (
                    r.vector if not isinstance(r.vector, dict) else {k: str(v) for k, v in r.vector.items()}
                )
                result[r.id] = hashlib.sha256(repr((r.payload, vector)).encode()).hexdigest()
            if offset is None:
                return result
    finally:
        client.close()
