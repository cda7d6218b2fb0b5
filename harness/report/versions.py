"""The versions a run recorded (meta.extra["versions"]), as the summary and the report show them.

Why only recorded ones: a report re-rendered on another machine, or a year later,
must show what the run used, not what is installed where it is rendered. The
run asks its services when it runs (harness/run/versions.py); a tool the run did
not record is None here ("not recorded"), never looked up.
"""

from __future__ import annotations

from collections.abc import Mapping

from harness.history.schema import RECORDED_TOOLS

__all__ = ["recorded_versions", "TOOLS"]

TOOLS = RECORDED_TOOLS
_CHARS_MAX = 240


def recorded_versions(extra: Mapping | None) -> dict[str, str | None]:
    """{tool: version text or None} for TOOLS, from meta.extra's "versions" mapping (or, in histories
    written by other tools, "<tool>_version" keys; "harness_version" for ledgerchaos)."""
    extra = extra or {}
    recorded = extra.get("versions") if isinstance(extra.get("versions"), Mapping) else {}
    out: dict[str, str | None] = {}
    for tool in TOOLS:
        value = recorded.get(tool, extra.get(f"{tool}_version"))
        if tool == "ledgerchaos" and value is None:
            value = extra.get("harness_version")
        out[tool] = str(value)[:_CHARS_MAX] if value is not None else None
    return out
