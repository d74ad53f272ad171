"""python -m docs.diagrams [--stack NAME ...] [--out DIR] [--svg]

Runs the program for each stack under the same mocks `policies.check` uses and writes the plan's
six views as PlantUML (`<stack>-<view>.puml`), then renders each to SVG with PlantUML
(`plantuml` on PATH, Debian's package). Default: both stacks into docs/diagrams/, with SVGs.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from docs.diagrams.views import VIEWS
from policies.program import ROOT, run_program

OUT = ROOT / "docs" / "diagrams"


def write_diagrams(stack: str, out: Path, overrides: dict | None = None) -> list[Path]:
    """The six views of `stack` as .puml files in `out`."""
    run = run_program(stack, overrides=overrides)
    written = []
    for view, draw in VIEWS.items():
        path = out / f"{stack}-{view}.puml"
        path.write_text(draw(run, stack))
        written.append(path)
    return written


def render_svg(paths: list[Path]) -> None:
    """Check, then render each file with PlantUML; fails on the first error."""
    plantuml = shutil.which("plantuml")
    if plantuml is None:
        raise RuntimeError("plantuml is not installed: apt-get install -y plantuml (.ci/run does this)")
    for flag in ("-checkonly", "-tsvg"):
        result = subprocess.run(
            [plantuml, flag, *map(str, paths)], capture_output=True, text=True, timeout=300
        )
        if result.returncode != 0:
            raise RuntimeError(f"plantuml {flag} failed: {(result.stdout + result.stderr).strip()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m docs.diagrams", description=__doc__.split("\n\n")[1])
    parser.add_argument("--stack", action="append", help="stack to draw (repeatable; default dev and prod)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder for the files (default {OUT})")
    parser.add_argument("--no-svg", action="store_true", help="write PlantUML only")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        paths = [p for stack in args.stack or ["dev", "prod"] for p in write_diagrams(stack, args.out)]
        if not args.no_svg:
            render_svg(paths)
    except (RuntimeError, ValueError) as err:
        print(f"docs.diagrams: {err}", file=sys.stderr)
        return 1
    for path in paths:
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
