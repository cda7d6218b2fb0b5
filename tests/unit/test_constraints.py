"""constraints.txt: the installed packages are the pinned ones, and the summary says when they are not."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

from harness.run.versions import CONSTRAINTS_FILE, constraints_status

REPO = Path(__file__).resolve().parents[2]


def test_the_checkout_has_the_constraints_file_setup_installs_from():
    assert CONSTRAINTS_FILE == REPO / "constraints.txt" and CONSTRAINTS_FILE.is_file()
    assert '-c "$ROOT/constraints.txt"' in (REPO / "scripts" / "setup.sh").read_text()


def test_matching_pins_are_reported_with_the_file_hash(tmp_path):
    pins = tmp_path / "constraints.txt"
    pins.write_text(f"# header\npytest=={metadata.version('pytest')}\nnumpy=={metadata.version('numpy')}\n")
    status = constraints_status(pins)
    assert status is not None and status.startswith("constraints.txt sha256:")
    assert status.endswith("all 2 pins installed")


def test_a_differing_and_a_missing_pin_are_named(tmp_path):
    pins = tmp_path / "constraints.txt"
    pins.write_text(f"pytest=={metadata.version('pytest')}\nnumpy==0.0.1\nno-such-package-lc==1.0\n")
    status = constraints_status(pins)
    assert status is not None and "2 of 3 differ" in status
    assert f"numpy {metadata.version('numpy')} (pinned 0.0.1)" in status
    assert "no-such-package-lc missing (pinned 1.0)" in status


def test_no_constraints_file_is_none_not_an_error(tmp_path):
    assert constraints_status(tmp_path / "absent.txt") is None


def test_the_lock_script_reproduces_the_committed_file_from_this_environment():
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "lock.py"), "--check"], capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
