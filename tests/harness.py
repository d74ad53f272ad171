"""The mock runner lives in policies/program.py (policies.check uses it too); tests import it here."""

from policies.program import (  # noqa: F401
    PROJECT,
    ROOT,
    SECRET_PLACEHOLDER,
    SECRET_SIG,
    ProgramRun,
    RecordingMocks,
    RegisteredResource,
    contains_secret_wrapper,
    run_program,
    stack_config,
    unwrap_secrets,
)
