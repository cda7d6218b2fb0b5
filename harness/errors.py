"""The harness's exceptions: one root, one subclass per cause, each with its exit code.

Why: the CLI maps an exception to an exit code in one place, and nothing prints a
traceback at a user for a mistake they made (STYLE habit 13).
"""

from __future__ import annotations


class LedgerchaosError(Exception):
    """Root of every error the harness raises on purpose."""

    exit_code = 1


class UsageError(LedgerchaosError):
    """The command or its input is wrong; nothing was started. Exit 2."""

    exit_code = 2


class ScenarioError(UsageError):
    """A scenario file is wrong: the message names the field, the value and the fix."""


class StackError(LedgerchaosError):
    """A service of the stack could not be started, reached or stopped. Exit 3."""

    exit_code = 3


class FaultError(LedgerchaosError):
    """Toxiproxy or a process fault could not be applied or removed. Exit 3."""

    exit_code = 3


class RunError(LedgerchaosError):
    """The run could not complete (partial history still written). Exit 3."""

    exit_code = 3
