"""Imports flow one way (docs/architecture.md): each rule here is a line of that page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
IMPORT = re.compile(r"^\s*(?:from|import)\s+(harness|reference_system)(?:\.(\w+))?", re.M)

# package -> packages it must never import (lazily included)
FORBIDDEN = {
    "report": {"capacity", "run", "explore", "load", "stack"},
    "scenario": {"explore", "run", "report", "capacity", "stack"},
    "checkers": {"report", "run", "capacity", "explore", "scenario", "load", "stack"},
    "history": {"checkers", "report", "run", "capacity", "explore", "scenario", "load", "stack", "faults"},
    "overlay": {"capacity", "report", "run", "checkers"},
    "capacity": {"run", "explore"},
    "faults": {"run", "report", "capacity", "explore", "checkers"},
}


def _imports(package: str) -> set[str]:
    root = REPO / "harness"
    files = [root / f"{package}.py"] if (root / f"{package}.py").is_file() else list((root / package).rglob("*.py"))
    found = set()
    for path in files:
        for top, sub in IMPORT.findall(path.read_text(encoding="utf-8")):
            if top == "harness" and sub and sub != package:
                found.add(sub)
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_flow_one_way(package):
    assert not _imports(package) & FORBIDDEN[package], (
        f"harness.{package} imports {_imports(package) & FORBIDDEN[package]}"
    )


def test_the_reference_system_knows_nothing_of_the_harness():
    for path in (REPO / "reference_system").rglob("*.py"):
        assert "harness" not in {top for top, _ in IMPORT.findall(path.read_text(encoding="utf-8"))}, path
