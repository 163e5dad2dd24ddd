"""molecule/exec_retry: a scenario check whose `docker exec` failed in Docker's plumbing is run again; a check whose
command failed is not. The results are testinfra's own CommandResult; the runner is a stand-in for `docker exec`."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from testinfra.backend.base import BaseBackend, CommandResult
from testinfra.backend.docker import DockerBackend

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "molecule"))
exec_retry = importlib.import_module("exec_retry")

# What CI's `docker exec` printed on 2026-12-05 (the command's answer, then containerd's failure), status 126.
PIPE_FAILURE = ('{"version":"v1.0.0"}failed to start io pipe copy: unable to copy pipes: containerd-shim: opening w/o '
                'fifo "/var/run/docker/containerd/b51f/083d-stderr" failed: context deadline exceeded\r\n')


def result(rc: int, stdout: str, stderr: str = "") -> CommandResult:
    return CommandResult(BaseBackend("stand-in"), rc, b"cmd", stdout, stderr)


class Runner:
    """Answers each call with the next of `results`, and notes the arguments it was called with."""

    def __init__(self, *results: CommandResult) -> None:
        self.results, self.calls = list(results), list[tuple[Any, ...]]()

    def __call__(self, *args: Any) -> CommandResult:
        self.calls.append(args)
        return self.results.pop(0)


def test_dockers_pipe_failure_is_run_again_and_the_next_answer_returned() -> None:
    runner, pauses = Runner(result(126, PIPE_FAILURE), result(0, '{"version":"v1.0.0"}')), list[float]()
    answer = exec_retry.retrying(runner, sleep=pauses.append)("curl /version")
    assert (answer.rc, answer.stdout) == (0, '{"version":"v1.0.0"}')
    assert runner.calls == [("curl /version",), ("curl /version",)]
    assert pauses == [1.0]


def test_a_command_that_fails_for_itself_is_not_run_again() -> None:
    for failed in (result(1, "", "curl: (7) Failed to connect"), result(126, "", "sh: ./x: Permission denied"),
                   result(127, "", "sh: slipway-proxy: not found")):
        runner = Runner(failed)
        assert exec_retry.retrying(runner, sleep=lambda _: None)("check") is failed
        assert len(runner.calls) == 1


def test_dockers_failure_every_time_returns_the_last_failure_after_the_attempts() -> None:
    failures = [result(126, "", "OCI runtime exec failed: exec failed: context deadline exceeded") for _ in range(3)]
    runner = Runner(*failures)
    answer = exec_retry.retrying(runner, attempts=3, sleep=lambda _: None)("check")
    assert answer is failures[-1] and len(runner.calls) == 3


def test_the_scenarios_docker_backend_runs_through_the_retry(monkeypatch: Any) -> None:
    monkeypatch.setattr(DockerBackend, "run", DockerBackend.run)  # restored after the test
    monkeypatch.setattr(exec_retry.time, "sleep", lambda _: None)
    spec = importlib.util.spec_from_file_location("molecule_conftest", ROOT / "molecule" / "conftest.py")
    assert spec is not None and spec.loader is not None
    spec.loader.exec_module(importlib.util.module_from_spec(spec))  # what pytest does for the scenarios' tests
    calls: list[str] = []
    answers = iter([result(126, PIPE_FAILURE), result(0, "ok")])

    def run_local(command: str, *args: str) -> CommandResult:
        calls.append(command % args)
        return next(answers)

    backend = DockerBackend("cluster-edge")
    monkeypatch.setattr(backend, "run_local", run_local)
    assert backend.run("true").stdout == "ok"
    assert len(calls) == 2 and all(c.startswith("docker exec cluster-edge /bin/sh -c") for c in calls)
