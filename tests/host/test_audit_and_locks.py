"""Issue 14, items 4, 8 and 9 on the host: every history line carries the audit (actor, controller, commit, tag,
run URL, approval); a lock names who holds it and its last progress, reports a stale holder with the exact
`slipway unlock` line, and is released only when no host command of its run is still running; an unlock records
its reason in the history."""

from __future__ import annotations

import gc
import io
import json
import signal
import subprocess
import time
from typing import Any

import pytest
from fakes import FakeClock
from world import SERVICE, STALE_AFTER, World

from slipway_core import contract
from slipway_core.host import main, recovery, system
from slipway_core.host.lock import Lock, LockRefused
from slipway_core.host.store import Store

AUDIT = {
    "env": "staging",
    "actor": "alice",
    "controller": "gh-runner-7",
    "commit": "0123456789abcdef0123456789abcdef01234567",  # pragma: allowlist secret
    "tag": "v1.4.0-staging.3",
    "run_url": "https://github.com/acme/ops/actions/runs/42",
    "approval": "approved by bob",
}


Capsys = pytest.CaptureFixture[str]


@pytest.fixture
def release(world: World, monkeypatch: pytest.MonkeyPatch, capsys: Capsys) -> Any:
    """`slipway-release ARGS` on the fake host, with `stdin`: (exit code, the JSON answer)."""

    def make_host(args: Any) -> Any:
        world.host.audit = main.read_audit(getattr(args, "audit", "{}"))
        return world.host

    monkeypatch.setattr(main, "make_host", make_host)

    def call(*argv: str, stdin: Any = None) -> tuple[int, Any]:
        capsys.readouterr()
        text = json.dumps(stdin) if stdin is not None else ""
        monkeypatch.setattr("sys.stdin", io.StringIO(text))
        code = main.main(["--root", world.root, *argv], prog="/usr/local/sbin/slipway-release")
        out = capsys.readouterr().out
        return code, json.loads(out) if out.strip() else None

    return call


@pytest.fixture
def audited(world: World) -> World:
    world.host.audit = dict(AUDIT)
    return world


def test_every_history_line_carries_the_audit(audited: World) -> None:
    audited.image("v1.0.0")
    audited.image("v2.0.0")
    audited.deploy("v1.0.0", "r1")
    audited.host.audit = {**AUDIT, "actor": "carol", "approval": ""}
    audited.deploy("v2.0.0", "r2")

    first, second = audited.history()
    for key, value in AUDIT.items():
        assert first[key] == value, key
    assert first["who"] == "alice"
    assert (second["actor"], second["who"], second["approval"]) == ("carol", "carol", "")
    assert set(contract.HISTORY_KEYS) <= set(first)


def test_a_failed_rollout_carries_the_audit_too(audited: World) -> None:
    audited.image("v1.0.0")
    audited.begin("v1.0.0", "r1", start_when_ready=False)

    audited.finish("r1", "image", "the controller failed")

    (line,) = audited.history()
    assert (line["result"], line["actor"], line["run_url"]) == ("failed", "alice", AUDIT["run_url"])


def test_a_lock_names_its_holder_controller_run_url_and_progress(audited: World) -> None:
    audited.image("v1.0.0")
    audited.begin("v1.0.0", "r1", start_when_ready=False)
    audited.clock.advance(7)
    audited.advance("v1.0.0", "r1", ["start"])

    held = audited.lock()
    assert held is not None
    assert held["audit"]["actor"] == "alice"
    assert (held["step"], held["heartbeat"]) == ("start", audited.clock.time())
    with pytest.raises(LockRefused) as refused:
        Lock(audited.store()).take("r2", "dave", "deploy", "v2.0.0", STALE_AFTER)
    message = str(refused.value)
    assert "run r1 (alice on gh-runner-7, https://github.com/acme/ops/actions/runs/42, deploy of v1.0.0" in message
    assert "last progress: step start at" in message


def test_the_lock_is_touched_before_each_step(audited: World, monkeypatch: pytest.MonkeyPatch) -> None:
    audited.image("v1.0.0")
    audited.begin("v1.0.0", "r1", start_when_ready=False)
    touched: list[str | None] = []
    real = Lock.heartbeat

    def spy(self: Lock, run_id: str, step: str | None = None) -> None:
        touched.append(step)
        real(self, run_id, step)

    monkeypatch.setattr(Lock, "heartbeat", spy)
    audited.advance("v1.0.0", "r1", ["start", "health", "switch", "drain", "record"])

    assert touched[-5:] == ["start", "health", "switch", "drain", "record"]


def test_a_stale_lock_is_reported_with_the_slipway_unlock_line(audited: World) -> None:
    audited.image("v1.0.0")
    audited.begin("v1.0.0", "r1", start_when_ready=False)
    gc.collect()  # the begin's process has ended (its flock on .active is gone)
    audited.clock.advance(STALE_AFTER + 5)

    with pytest.raises(LockRefused) as refused:
        Lock(audited.store()).take("r2", "dave", "deploy", "v2.0.0", STALE_AFTER)

    message = str(refused.value)
    assert "STALE" in message
    assert f"slipway unlock --env staging --service {SERVICE} --reason '<why>'" in message
    assert "alice on gh-runner-7" in message


# ------------------------------------------------------------------------------------ a command still running
@pytest.fixture
def sleeper() -> Any:
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def record_command(store: Store, pid: int) -> None:
    """The lock says the command `pid` (another process) works for its run now."""
    held = Lock(store).held()
    assert held is not None
    held["command"] = {"pid": pid, "start": system.process_start(pid)}
    system.write_json(store.paths.lock, held, 0o644)


def test_unlock_refuses_while_a_recorded_command_of_the_run_is_alive(audited: World, sleeper: Any) -> None:
    audited.image("v1.0.0")
    audited.begin("v1.0.0", "r1", start_when_ready=False)
    gc.collect()
    store = audited.store()
    record_command(store, sleeper.pid)

    answer = recovery.unlock(audited.host, [store], "r1", False, "cancelled")

    assert answer["released"] == []
    assert answer["refused"][0]["service"] == SERVICE
    assert f"pid {sleeper.pid}" in answer["refused"][0]["reason"]
    assert audited.lock() is not None

    sleeper.send_signal(signal.SIGKILL)
    sleeper.wait()
    answer = recovery.unlock(audited.host, [store], "r1", False, "cancelled")
    assert [item["service"] for item in answer["released"]] == [SERVICE]
    assert audited.lock() is None


def test_a_reused_pid_is_not_the_recorded_command(audited: World) -> None:
    audited.image("v1.0.0")
    audited.begin("v1.0.0", "r1", start_when_ready=False)
    gc.collect()
    store = audited.store()
    held = Lock(store).held()
    assert held is not None
    held["command"] = {"pid": 1, "start": -1}  # pid 1 lives, but started at another time: not our command
    system.write_json(store.paths.lock, held, 0o644)

    assert Lock(store).working() is None


def test_unlock_waits_for_a_command_that_ends(audited: World) -> None:
    audited.image("v1.0.0")
    audited.begin("v1.0.0", "r1", start_when_ready=False)
    gc.collect()
    store = audited.store()
    proc = subprocess.Popen(["sleep", "0.3"])
    try:
        record_command(store, proc.pid)
        audited.clock.on_sleep.append(lambda: time.sleep(0.02))  # the fake clock's sleeps let real time pass
        answer = recovery.unlock(audited.host, [store], "r1", False, "cancelled", wait=5)
    finally:
        proc.wait()
    assert [item["service"] for item in answer["released"]] == [SERVICE]


def test_finish_leaves_a_run_alone_while_its_command_runs(audited: World, sleeper: Any) -> None:
    audited.image("v1.0.0")
    audited.begin("v1.0.0", "r1")  # started the idle colour
    gc.collect()
    record_command(audited.store(), sleeper.pid)

    answer = audited.finish("r1", "switch", "ssh connection lost")

    assert answer["result"] == "unknown"
    assert f"pid {sleeper.pid}" in answer["message"]
    assert audited.lock() is not None
    assert f"{SERVICE}-blue" in audited.docker.boxes  # not discarded under the running command


def test_this_processs_own_command_is_not_in_the_way(audited: World) -> None:
    audited.image("v1.0.0")
    audited.begin("v1.0.0", "r1", start_when_ready=False)
    gc.collect()
    store = audited.store()
    record_command(store, __import__("os").getpid())

    assert Lock(store).working() is None


# ------------------------------------------------------------------------------------------- unlock and reason
def test_a_forced_unlock_records_its_reason_and_who(audited: World) -> None:
    audited.image("v1.0.0")
    audited.begin("v1.0.0", "r1", start_when_ready=False)
    gc.collect()
    audited.host.audit = {**AUDIT, "actor": "erin", "run_url": ""}

    answer = recovery.unlock(audited.host, [audited.store()], None, True, "controller killed (kill -9) mid deploy")

    assert answer["released"][0]["lock"]["run_id"] == "r1"
    (line,) = audited.history()
    assert (line["action"], line["result"], line["run_id"]) == ("unlock", "unlocked", "r1")
    assert (line["reason"], line["actor"], line["who"]) == ("controller killed (kill -9) mid deploy", "erin", "erin")
    assert "held by run r1 (alice on gh-runner-7" in line["message"]


def test_the_unlock_command_needs_a_reason_and_records_the_audit(world: World, release: Any) -> None:
    world.image("v1.0.0")
    world.begin("v1.0.0", "r1", start_when_ready=False)
    gc.collect()
    audit = json.dumps({**AUDIT, "actor": "frank"})

    assert release("unlock", SERVICE, "--force")[0] == contract.EXIT_USAGE
    code, answer = release("unlock", SERVICE, "--force", "--reason", "{{ lookup('pipe', 'id') }}")
    assert code == contract.EXIT_USAGE
    code, answer = release("unlock", SERVICE, "--force", "--reason", "stuck after a kill", "--audit", audit)

    assert code == 0, answer
    (line,) = world.history()
    assert (line["actor"], line["reason"], line["env"]) == ("frank", "stuck after a kill", "staging")


def test_an_unlock_refused_exits_1(world: World, release: Any, sleeper: Any, capsys: Capsys) -> None:
    world.image("v1.0.0")
    world.begin("v1.0.0", "r1", start_when_ready=False)
    gc.collect()
    record_command(world.store(), sleeper.pid)

    capsys.readouterr()
    code = main.main(["--root", world.root, "unlock", SERVICE, "--force", "--reason", "stuck"], prog="slipway-release")
    out, err = capsys.readouterr()
    answer = json.loads(out)

    assert f"slipway-release: unlock: {SERVICE} NOT released: a host command of run r1" in err
    assert code == contract.EXIT_FAILED
    assert answer["released"] == []
    assert "still running" in answer["refused"][0]["reason"]


def test_the_run_commands_take_the_audit(world: World, release: Any) -> None:
    world.image("v1.0.0")
    audit = json.dumps({**AUDIT, "actor": "gina", "junk": "dropped", "tag": "v1\nx{{ y }}"})

    code, answer = release("begin", SERVICE, "--run-id", "r1", "--audit", audit, stdin=world.spec("v1.0.0"))

    assert code == 0, answer
    held = world.lock()
    assert held is not None
    assert held["audit"]["actor"] == "gina"
    assert "junk" not in held["audit"]
    assert held["audit"]["tag"] == "v1 x(( y ))"
    assert release("begin", SERVICE, "--run-id", "r2", "--audit", "[1]", stdin=world.spec("v1.0.0"))[0] == 2


def test_make_host_reads_the_audit(tmp_path: Any) -> None:
    args = main.release_parser().parse_args(
        ["--proxy-settings", str(tmp_path / "none"), "begin", SERVICE, "--run-id", "r1", "--audit",
         json.dumps({"actor": "hana", "commit": "abc"})]
    )
    host = main.make_host(args)
    assert (host.audit["actor"], host.audit["commit"], host.holder) == ("hana", "abc", "hana")


def test_process_start_of_a_missing_process() -> None:
    assert system.process_start(2**22 + 7) is None
    assert system.process_alive(2**22 + 7, None) is False
    assert isinstance(FakeClock().time(), float)
