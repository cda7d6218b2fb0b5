"""The pytest plugin: import-light (every pytest run loads it), and its fixture runs scenarios by path or mapping."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _pytest(tmp_path, test_source: str, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(test_source))
    # Autoload off and -p on: the same whether or not the entry point is installed yet.
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "harness.pytest_plugin",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            *args,
            str(tmp_path / "test_inner.py"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_plugin_imports_neither_the_engine_nor_pandas():
    code = (
        "import sys, harness.pytest_plugin as p; heavy = [m for m in ('pandas', 'matplotlib', 'harness.run.engine', "
        "'harness.checkers', 'locust') if m in sys.modules]; print(heavy); assert not heavy"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_fixture_is_offered_and_a_wrong_scenario_fails_with_the_field_named(tmp_path):
    done = _pytest(
        tmp_path,
        """
        import pytest
        from harness.errors import ScenarioError

        def test_missing_file(ledgerchaos_scenario):
            with pytest.raises(ScenarioError, match="no such scenario file"):
                ledgerchaos_scenario("nope.yaml")

        def test_bad_mapping(ledgerchaos_scenario):
            with pytest.raises(ScenarioError, match="seed: -3"):
                ledgerchaos_scenario({"name": "x", "seed": -3, "load": {}})
    """,
        "--ledgerchaos-reports",
        str(tmp_path / "reports"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
