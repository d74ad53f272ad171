"""The fakes the stand-in images carry (e2e/images.py SUPPORT) import only what those images
have: the standard library, the Debian Python packages of their base, and each other. A fake
that imports the product's own modules runs in the unit tests and crashes every stand-in."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from e2e.images import BASE_PACKAGES, SUPPORT

ROOT = Path(__file__).resolve().parent.parent
DEBIAN_MODULES = {"python3-yaml": "yaml", "python3-jwt": "jwt", "python3-h2": "h2"}
"""The import name of each Debian Python package the base image installs."""


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom) and getattr(node, "level", 0) == 0
        for alias in node.names
        if not (isinstance(node, ast.ImportFrom) and node.module == "__future__")
    }


CARRIED = {f"tests.support.{n.removesuffix('.py')}" for n in SUPPORT} | {"tests.support.sigv4", "standin"}
"""The fakes, the object storage client as `sigv4` (e2e/images.py) and the stand-ins' own lib."""
PROGRAMS = sorted(
    [ROOT / "tests" / "support" / n for n in SUPPORT if n != "__init__.py"]
    + list((ROOT / "e2e" / "standins").rglob("*.py"))
)


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: str(p.relative_to(ROOT)))
def test_each_program_in_the_images_imports_only_what_they_have(path):
    packaged = {module for package, module in DEBIAN_MODULES.items() if package in BASE_PACKAGES}
    missing = {
        module
        for module in _imports(path)
        if module not in CARRIED and module.split(".")[0] not in set(sys.stdlib_module_names) | packaged
    }
    assert not missing, f"imports {sorted(missing)}, which the stand-in images do not carry"
