"""ObjectStorageLayout: refuses a change of the object storage's layout on an existing stack.

MinIO stripes every object over the drives of its erasure set and cannot re-stripe them onto
another layout: a changed `neon.objectStorage.nodes` or `drivesPerNode` would start the servers
on new volumes (an empty store under the pageserver, whose layers are in the old one) and
remove the old services. Every MinIO node and volume depends on this resource, whose update
fails first, naming both layouts and the way to move the data; nothing of the store is touched.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult


class ObjectStorageLayoutError(RuntimeError):
    """The layout of an existing store was changed."""


def layout_text(nodes: int, drives_per_node: int) -> str:
    return f"{nodes} node(s) x {drives_per_node} drive(s)"


class ObjectStorageLayoutProvider(ResourceProvider):
    """Holds the layout in the state; an update is a refusal."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_="object-storage-layout", outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = olds.get("layout") != news.get("layout")
        return DiffResult(changes=changed, replaces=[], delete_before_replace=False)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        raise ObjectStorageLayoutError(
            f"neon.objectStorage changed from {olds.get('layout')} to {news.get('layout')}: MinIO cannot "
            "re-stripe its drives, and the new layout would start an empty store on new volumes. Set "
            "nodes and drivesPerNode back; to move to another layout, copy the bucket (mc mirror) into "
            "the store of a new stack."
        )


class ObjectStorageLayout(pulumi.dynamic.Resource, module="neon", name="ObjectStorageLayout"):
    """The store's layout as deployed; every MinIO node and volume depends on it."""

    layout: pulumi.Output[str]

    def __init__(
        self, name: str, nodes: int, drives_per_node: int, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__(
            ObjectStorageLayoutProvider(), name, {"layout": layout_text(nodes, drives_per_node)}, opts
        )
