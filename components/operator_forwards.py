"""Every operator port of a stack, in one list: what OperatorAccess publishes on the first
host's loopback (`__main__.py`) and what `components.platform.tunnels` forwards over SSH."""

from __future__ import annotations

from components.kong.gateway import operator_forwards as kong_forwards
from components.monitoring.monitoring import operator_forwards as monitoring_forwards
from components.neon.storage import operator_forwards as neon_forwards
from components.platform.operator_access import Forward
from components.settings import StackSettings


def stack_operator_forwards(settings: StackSettings) -> list[Forward]:
    """The admin and operator ports of the tiers the stack deploys."""
    return [
        *(neon_forwards(settings.neon) if settings.features.neon else []),
        *(kong_forwards(settings.kong) if settings.features.kong_gateway else []),
        *(monitoring_forwards(settings.monitoring) if settings.features.monitoring else []),
    ]
