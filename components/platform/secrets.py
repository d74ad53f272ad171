"""Secrets that a stack may configure, and otherwise gets generated into its (encrypted) state."""

from __future__ import annotations

import pulumi
import pulumi_random as random


def secret_or_generated(
    name: str,
    configured: pulumi.Output[str] | None,
    parent: pulumi.Resource,
    length: int = 32,
) -> pulumi.Output[str]:
    """The configured secret, or a random one created as `name` under `parent`.

    Generated values have no special characters so they are safe in URLs, env files and
    command lines without quoting.
    """
    if configured is not None:
        return pulumi.Output.secret(configured)
    password = random.RandomPassword(
        name,
        length=length,
        special=False,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    # The provider marks `result` secret; say so here too so no code path can leak it.
    return pulumi.Output.secret(password.result)
