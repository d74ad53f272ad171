"""Dynamic providers as the engine gets them: serialized by the SDK (dill), then loaded."""

from __future__ import annotations

import base64

import dill
from pulumi.dynamic.dynamic import serialize_provider


def roundtrip(provider):
    """The provider after the SDK's own serialization and the provider host's deserialization."""
    return dill.loads(  # noqa: S301 (our own provider, as the provider host loads it)
        base64.b64decode(serialize_provider(provider))
    )
