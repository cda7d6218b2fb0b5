"""The versions a run records come from the services it ran against, never from a guess."""

from __future__ import annotations

import platform

from harness import __version__
from harness.history.schema import RECORDED_TOOLS
from harness.run.versions import versions_at_run_time


class Proxy:
    def __init__(self, answer: str | Exception) -> None:
        self.answer = answer

    def version(self) -> str:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_no_service_means_no_version_not_this_machines():
    versions = versions_at_run_time(None, None, None)
    assert tuple(versions) == RECORDED_TOOLS
    assert versions["redis"] is None and versions["postgresql"] is None and versions["toxiproxy"] is None
    assert versions["ledgerchaos"] == __version__ and versions["python"] == platform.python_version()


def test_toxiproxy_answers_as_text_or_as_json():
    assert versions_at_run_time(None, None, Proxy("2.5.0"))["toxiproxy"] == "2.5.0"
    assert versions_at_run_time(None, None, Proxy('{"version": "v2.12.0"}'))["toxiproxy"] == "2.12.0"


def test_a_service_that_does_not_answer_is_unknown_and_the_run_goes_on():
    versions = versions_at_run_time("redis://127.0.0.1:1/0", "postgresql://x@127.0.0.1:1/x", Proxy(OSError("refused")))
    assert versions["redis"] is None and versions["postgresql"] is None and versions["toxiproxy"] is None
