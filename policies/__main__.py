"""The policy pack, for `pulumi preview --policy-pack policies
--policy-pack-config policies/config/<environment>.json`. Assembly only: the rules live beside it."""

import sys
from pathlib import Path

# The CLI runs this file from the pack's folder; the rules are imported as the `policies` package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack

from policies.pack import PACK_NAME, POLICIES

PolicyPack(name=PACK_NAME, enforcement_level=EnforcementLevel.ADVISORY, policies=POLICIES)
