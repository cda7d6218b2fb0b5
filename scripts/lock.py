"""Write constraints.txt: the exact version of every Python package ledgerchaos[test] pulls in.

Why: pyproject.toml gives lower bounds (what the code needs); a run is only
replayable on the versions it ran with, and CI must install what was tested.
setup.sh installs with `pip install -c constraints.txt`, and each run's summary
says whether the installed packages still match the file (harness/run/versions.py).

Run it after changing a dependency, in an environment installed by setup.sh:
    python scripts/lock.py            # rewrites constraints.txt
    python scripts/lock.py --check    # exit 1 when the file and this environment differ
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "ledgerchaos"
EXTRAS = ("test",)
OUT = ROOT / "constraints.txt"
HEADER = "# Exact versions of ledgerchaos[test] and everything it pulls in; written by scripts/lock.py.\n"


def closure() -> dict[str, str]:
    """{canonical name: installed version} for the project's requirements (with EXTRAS), transitively."""
    pins: dict[str, str] = {}
    todo = [(PROJECT, EXTRAS)]
    seen: set[str] = set()
    while todo:
        name, extras = todo.pop()
        key = canonicalize_name(name)
        if (key, extras) in seen:
            continue
        seen.add((key, extras))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            sys.exit(f"lock: {name} is required but not installed; run scripts/setup.sh first")
        if key != PROJECT:
            pins[key] = dist.version
        for text in dist.requires or []:
            req = Requirement(text)
            environments = [{"extra": extra} for extra in extras] or [{"extra": ""}]
            if req.marker is not None and not any(req.marker.evaluate(env) for env in environments):
                continue
            todo.append((req.name, tuple(sorted(req.extras))))
    return pins


def render(pins: dict[str, str]) -> str:
    return HEADER + "".join(f"{name}=={version}\n" for name, version in sorted(pins.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    text = render(closure())
    if args.check:
        same = OUT.is_file() and OUT.read_text() == text
        print("constraints.txt matches this environment" if same else "constraints.txt differs: run scripts/lock.py")
        return 0 if same else 1
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(ROOT)}: {text.count(chr(10)) - 1} packages")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
