"""The CLI end to end with a FAKE ansible-runner: `run` is replaced by a function that feeds hand-written
events to the handler (no ansible-playbook, no hosts). Real ansible-runner runs are in test_runner_real.py."""

from __future__ import annotations

import io
import json
import os
import signal
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from slipway import cli
from slipway.runner import EventCallback, PlaybookRun, RunnerOutcome
from slipway_core import contract

Events = list[dict[str, Any]]


def stats(results: list[dict[str, Any]], failures: Mapping[str, int] | None = None) -> dict[str, Any]:
    return {
        "event": "playbook_on_stats",
        "event_data": {
            "failures": dict(failures or {}),
            "dark": {},
            "artifact_data": {"slipway_results": results},
        },
    }


class FakeRunner:
    """Stands in for slipway.runner.run_playbook: records the request, replays events, returns a status."""

    def __init__(
        self,
        events: Events,
        status: str = "successful",
        action: Callable[[], None] | None = None,
        rc: int = 0,
    ) -> None:
        self.events = events
        self.status = status
        self.action = action
        self.rc = rc
        self.calls: list[PlaybookRun] = []

    def __call__(
        self, run: PlaybookRun, on_event: EventCallback, cancelled: threading.Event
    ) -> RunnerOutcome:
        self.calls.append(run)
        if self.action is not None and len(self.calls) == 1:
            self.action()
        for event in self.events:
            on_event(event)
        was_cancelled = cancelled.is_set()
        return RunnerOutcome("canceled" if was_cancelled else self.status, self.rc, was_cancelled)


def invoke(
    args: list[str],
    env: Mapping[str, str] | None = None,
    runner: FakeRunner | None = None,
    posted: list[tuple[str, dict[str, Any]]] | None = None,
) -> tuple[int, str, str, FakeRunner]:
    runner = runner or FakeRunner([stats([{"host": "demo-1", "service": "notes-api", "result": "deployed"}])])
    out, err = io.StringIO(), io.StringIO()
    sent: list[tuple[str, dict[str, Any]]] = [] if posted is None else posted
    code = cli.main(
        args,
        environ={"PATH": os.environ["PATH"], "HOME": "/nonexistent", **(env or {})},
        run=runner,
        post=lambda url, payload: sent.append((url, payload)),
        streams=cli.Streams(out, err),
    )
    return code, out.getvalue(), err.getvalue(), runner


def test_deploy_ok_with_json_summary_and_outputs(project: Path, tmp_path: Path) -> None:
    summary, output = tmp_path / "summary.md", tmp_path / "output"
    env = {"GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(output), "GITHUB_ACTIONS": "true"}
    args = ["deploy", "--env", "demo", "--service", "notes-api", "--version", "v1.0.1", "--json"]
    code, out, _err, runner = invoke([*args, "--project-dir", str(project)], env)
    assert code == 0
    data = json.loads(out)
    assert (data["outcome"], data["exit_code"], data["env"]) == ("deployed", 0, "demo")
    request = runner.calls[0]
    assert request.playbook == "playbooks/deploy.yml"
    assert {k: v for k, v in request.extravars.items() if not k.startswith("slipway_audit_")} == {
        "env": "demo",
        "service": "notes-api",
        "version": "v1.0.1",
        "slipway_run_id": data["run_id"],
    }
    assert request.extravars["slipway_audit_actor"] == "unknown"  # GITHUB_ACTOR unset (slipway.audit)
    assert "slipway deploy `demo`: deployed" in summary.read_text()
    assert "outcome=deployed\nexit_code=0\n" in output.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["deploy", "--env", "nope"], "environment 'nope' is unknown: use one of: demo, remote, sealed"),
        (["deploy", "--env", "demo", "--service", "billing"], "not in the services registry"),
        (["deploy", "--env", "demo", "--service", "notes-api", "--version", "1.2"], "all three parts"),
        (
            ["deploy", "--env", "demo", "--service", "notes-api", "--version", "v1.2.3; rm -rf /"],
            "not an image tag",
        ),
        (
            ["deploy", "--env", "demo", "--service", "notes-api", "--version", "v" * 10_000],
            "not an image tag",
        ),
        (["deploy", "--env", "demo", "--version", "v1.2.3"], "a version ('v1.2.3') was given without a service"),
        (["deploy", "--env", "demo", "--service", ""], "service '' is not a service name"),
        (["status", "--env", "demo", "--service", "a;b"], "service 'a;b' is not a service name"),
        (["history", "--env", "demo", "--service", "billing"], "not in the services registry of demo"),
        (["deploy", "--env", "sealed"], "set SLIPWAY_VAULT_PASSWORD"),
        (["deploy", "--env", "remote"], "set SLIPWAY_SSH_PRIVATE_KEY"),
    ],
)
def test_bad_input_exits_2_and_runs_nothing(
    project: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    output = tmp_path / "output"
    code, out, err, runner = invoke([*args, "--project-dir", str(project)], {"GITHUB_OUTPUT": str(output)})
    assert code == 2
    assert runner.calls == []  # nothing touched
    assert message in err
    assert len(err) < 1000
    assert "outcome=bad-input\nexit_code=2\n" in output.read_text()
    assert "bad-input" in out


@pytest.mark.parametrize(
    ("option", "value", "rule"),
    [
        ("--version", "v1.2.3\n", contract.check_version),
        ("--version", "latest", contract.check_version),
        ("--version", "-v1", contract.check_version),
        ("--service", "notes-api ", contract.check_service_name),
        ("--service", "$(id)", contract.check_service_name),
    ],
)
def test_the_message_is_the_contracts_word_for_word(
    project: Path, option: str, value: str, rule: Callable[[str], str]
) -> None:
    """`slipway: error: ` and then exactly the contract's message (the playbooks' preflight shows the same)."""
    with pytest.raises(contract.InputRefused) as refused:
        rule(value)
    service = [] if option == "--service" else ["--service", "notes-api"]
    code, _out, err, runner = invoke(["deploy", "--env", "demo", *service, f"{option}={value}",
                                      "--project-dir", str(project)])
    assert (code, runner.calls) == (2, [])
    assert f"slipway: error: {refused.value}\n" in err


def test_missing_playbook_exits_2(project: Path) -> None:
    (project / "playbooks/history.yml").unlink()
    code, _out, err, runner = invoke(["history", "--env", "demo", "--project-dir", str(project)])
    assert (code, runner.calls) == (2, [])
    assert "playbooks/history.yml is missing" in err


def test_unusable_ssh_key_and_unpinned_host_key(project: Path, tmp_path: Path) -> None:
    args = ["provision", "--env", "remote", "--project-dir", str(project)]
    code, _o, err, _r = invoke(args, {"SLIPWAY_SSH_PRIVATE_KEY": "not a key"})
    assert code == 2
    assert "not a usable private key" in err
    assert "not a key" not in err
    code, _o, err, _r = invoke(args, {"SSH_AUTH_SOCK": "/tmp/agent"})  # noqa: S108 - a path string only
    assert code == 2
    assert "no pinned host key for remote-1 (192.0.2.10)" in err


def test_pinned_host_key_and_agent_pass(project: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    # a public key, not a secret
    key = "AAAAC3NzaC1lZDI1NTE5AAAAIHAK52Epise7F4VLmp//f8wnjA2mJnnkPf6uR8gujBFR"  # pragma: allowlist secret
    (home / ".ssh/known_hosts").write_text(f"192.0.2.10 ssh-ed25519 {key}\n")
    # ssh reads the home of the password database, not $HOME: point it at this file, as the check asks ssh -G
    hosts = project / "inventories/remote/hosts.yml"
    args = f"-o UserKnownHostsFile={home}/.ssh/known_hosts"
    text = hosts.read_text().replace("deploy}", f"deploy, ansible_ssh_common_args: '{args}'}}")
    hosts.write_text(text)
    code, _o, _e, runner = invoke(
        ["provision", "--env", "remote", "--project-dir", str(project)],
        {"HOME": str(home), "SSH_AUTH_SOCK": "/x"},
    )
    assert code == 0
    assert runner.calls[0].playbook == "playbooks/infra.yml"


@pytest.mark.parametrize(
    ("events", "status", "code"),
    [
        ([stats([{"host": "demo-1", "service": "notes-api", "result": "noop"}])], "successful", 0),
        (
            [stats([{"host": "demo-1", "service": "notes-api", "result": "failed"}], {"demo-1": 1})],
            "failed",
            1,
        ),
        ([stats([{"host": "demo-1", "service": "notes-api", "result": "unknown"}])], "successful", 3),
        ([stats([], {"demo-1": 1})], "failed", 3),
        (
            [{"event": "runner_on_unreachable", "event_data": {"host": "demo-1", "res": {}}}, stats([])],
            "failed",
            3,
        ),
    ],
)
def test_exit_codes(project: Path, events: Events, status: str, code: int) -> None:
    got, out, _err, _r = invoke(
        ["deploy", "--env", "demo", "--project-dir", str(project)], runner=FakeRunner(events, status)
    )
    assert got == code
    assert f"exit code {code}" in out


def test_status_and_history_print_records(project: Path) -> None:
    events = [
        {
            "event": "playbook_on_stats",
            "event_data": {
                "artifact_data": {"slipway_status": [{"host": "demo-1", "colour": "blue", "healthy": True}]}
            },
        }
    ]
    code, out, _e, runner = invoke(
        ["status", "--env", "demo", "--project-dir", str(project)], runner=FakeRunner(events)
    )
    assert code == 0
    assert "host=demo-1 colour=blue" in out
    assert runner.calls[0].playbook == "playbooks/status.yml"
    code, _o, _e, runner = invoke(
        ["history", "--env", "demo", "--service", "notes-api", "--project-dir", str(project)]
    )
    assert runner.calls[0].extravars["service"] == "notes-api"


def test_sigterm_cancels_and_releases_the_lock(project: Path) -> None:
    """SIGTERM during the run sets the cancel flag; after a cancelled rollout the unlock playbook runs."""
    runner = FakeRunner([], action=lambda: os.kill(os.getpid(), signal.SIGTERM))
    before = signal.getsignal(signal.SIGTERM)
    code, out, _err, _r = invoke(
        ["rollback", "--env", "demo", "--service", "notes-api", "--project-dir", str(project)], runner=runner
    )
    assert code == 3
    assert [c.playbook for c in runner.calls] == ["playbooks/rollback.yml", "playbooks/unlock.yml"]
    assert runner.calls[1].extravars["slipway_run_id"] == runner.calls[0].extravars["slipway_run_id"]
    assert "cancelled" in out
    assert signal.getsignal(signal.SIGTERM) == before  # handlers restored


def test_rollback_to_passes_the_version_to_the_playbook(project: Path) -> None:
    """FAKE ansible-runner: `--to V` becomes the playbook's `version`; without it none is passed."""
    runner = FakeRunner([])
    code, _out, _err, _r = invoke(["rollback", "--env", "demo", "--service", "notes-api", "--to", "v1.0.0",
                                   "--project-dir", str(project)], runner=runner)
    assert code == 0
    assert (runner.calls[0].playbook, runner.calls[0].extravars["version"]) == ("playbooks/rollback.yml", "v1.0.0")
    plain = FakeRunner([])
    invoke(["rollback", "--env", "demo", "--service", "notes-api", "--project-dir", str(project)], runner=plain)
    assert "version" not in plain.calls[0].extravars


def test_cancel_without_unlock_playbook_says_what_to_do(project: Path) -> None:
    (project / "playbooks/unlock.yml").unlink()
    runner = FakeRunner([], action=lambda: os.kill(os.getpid(), signal.SIGINT))
    code, out, _e, _r = invoke(
        ["deploy", "--env", "demo", "--project-dir", str(project), "--json"], runner=runner
    )
    assert code == 3
    assert "release the lock by hand" in json.loads(out)["errors"][0]


def test_notifications_are_sent_and_can_be_disabled(project: Path) -> None:
    hooks = {"SLIPWAY_WECOM_WEBHOOK": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"}
    sent: list[str] = []
    for extra, expected in (([], 1), (["--no-notify"], 0)):
        sent.clear()
        cli.main(
            ["deploy", "--env", "demo", "--project-dir", str(project), *extra],
            environ={"PATH": os.environ["PATH"], **hooks},
            run=FakeRunner([stats([{"host": "demo-1", "service": "notes-api", "result": "deployed"}])]),
            post=lambda url, payload: sent.append(url),
            streams=cli.Streams(io.StringIO(), io.StringIO()),
        )
        assert len(sent) == expected


def test_deploy_check_plans_without_notifying(project: Path, tmp_path: Path) -> None:
    """--check asks ansible-playbook for --check --diff; "planned" results exit 0 and name what would change."""
    hooks = {"SLIPWAY_WECOM_WEBHOOK": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"}
    planned = [
        {"host": "demo-1", "service": "notes-api", "result": "planned", "version": "v1.0.1",
         "previous_version": "v1.0.0", "message": "would deploy v1.0.1 (the release differs from the live one)"},
        {"host": "demo-1", "service": "jotter", "result": "noop", "version": "v2.0.0", "previous_version": "v2.0.0"},
    ]
    sent: list[str] = []
    out = io.StringIO()
    runner = FakeRunner([stats(planned)])
    code = cli.main(
        ["deploy", "--env", "demo", "--project-dir", str(project), "--check", "--json"],
        environ={"PATH": os.environ["PATH"], **hooks},
        run=runner,
        post=lambda url, payload: sent.append(url),
        streams=cli.Streams(out, io.StringIO()),
    )
    data = json.loads(out.getvalue())
    assert (code, data["outcome"], sent) == (0, "planned", [])
    assert data["reason"] == "would deploy notes-api@demo-1 v1.0.0 -> v1.0.1"
    assert runner.calls[0].check is True
    _code, _out, _err, plain = invoke(["deploy", "--env", "demo", "--project-dir", str(project)])
    assert plain.calls[0].check is False


def test_webhook_must_be_https(project: Path) -> None:
    code, _o, err, _r = invoke(
        ["deploy", "--env", "demo", "--project-dir", str(project)], {"SLIPWAY_SLACK_WEBHOOK": "http://x"}
    )
    assert code == 2
    assert "must be an https:// URL" in err


def test_release_next(project: Path, tmp_path: Path) -> None:
    output = tmp_path / "output"
    code, out, _e, _r = invoke(
        ["release", "next", "--env", "staging", "--tags", "v1.4.0,v1.4.1"], {"GITHUB_OUTPUT": str(output)}
    )
    assert (code, out) == (0, "v1.4.2\n")
    assert output.read_text() == "tag=v1.4.2\n"
    code, out, _e, _r = invoke(
        ["release", "next", "--env", "production", "--tag", "v1.4.1", "--tags", "v1.4.1", "--json"]
    )
    assert (code, json.loads(out)) == (0, {"tag": "v1.5.0"})
    for args, message in (
        (["--env", "production", "--tags", "v1.4.1"], "needs --tag"),
        (["--env", "production", "--tag", "v1.4.0", "--tags", "v1.4.0"], "production tag"),
        (["--env", "staging", "--tag", "v1.4.1", "--tags", "v1.4.1"], "only for production"),
        (["--env", "demo", "--tags", ""], "staging and production only"),
    ):
        code, _o, err, _r = invoke(["release", "next", *args])
        assert code == 2, args
        assert message in err


def test_help_documents_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["deploy", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for line in (
        "0  deployed, or nothing to do",
        "1  a rollout failed",
        "2  bad input",
        "3  a host needs a person",
    ):
        assert line in text


def test_argparse_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["rollback", "--env", "demo"])  # --service is required
    assert info.value.code == 2


# Issue 14, item 6: an Ansible failure outside a rollout names its cause in the one-line reason.

NOT_FOUND_LINE = "The command was not found or was not executable: ansible-playbook."


@pytest.mark.parametrize(
    ("events", "rc", "cause"),
    [
        # ansible-runner's own line when it cannot start ansible-playbook (rc 127), as a real run emits it
        ([{"event": "verbose", "stdout": NOT_FOUND_LINE}], 127, f": {NOT_FOUND_LINE} (rc 127)"),
        ([], 127, ": command not found (rc 127)"),
        # ssh-add refusing SLIPWAY_SSH_PRIVATE_KEY (ansible-runner runs it before ansible-playbook)
        (
            [{"event": "verbose", "stdout": 'Error loading key "/tmp/x/ssh_key_data": invalid format\n'}],
            1,
            ': Error loading key "/tmp/x/ssh_key_data": invalid format (rc 1)',
        ),
        (
            [
                {"event": "runner_on_failed", "event_data": {"host": "demo-1", "task": "Read the state",
                                                             "res": {"msg": "docker: permission denied"}}},
                stats([], {"demo-1": 1}),
            ],
            2,
            " on demo-1: Read the state: docker: permission denied",
        ),
    ],
)
def test_ansible_failure_outside_a_rollout_names_its_cause(
    project: Path, events: Events, rc: int, cause: str
) -> None:
    """FAKE ansible-runner: the events and rc of a run that failed before (or outside) any rollout."""
    code, out, _err, _r = invoke(
        ["status", "--env", "demo", "--project-dir", str(project)], runner=FakeRunner(events, "failed", rc=rc)
    )
    assert code == 3
    first = out.splitlines()[0]
    assert first == f"slipway status demo: needs-person - Ansible failed outside a rollout{cause}"


# Issue 14, item 7: unexpected errors exit 3 with one line, notify anyway, never a traceback.

WECOM = {"SLIPWAY_WECOM_WEBHOOK": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["deploy", "--env", "demo", "--service", "notes-api", "--version=--"], "version '--' is not an image tag"),
        (["deploy", "--env", "demo", "--service=--"], "service '--' is not a service name"),
        (["rollback", "--env", "demo", "--service=--"], "service '--' is not a service name"),
        (["rollback", "--env", "demo", "--service", "notes-api", "--to=--"], "version '--' is not an image tag"),
        (["status", "--env=--"], "environment '--' is unknown"),
        (["deploy", "--env", "demo", "--project-dir=--"], "--project-dir {project}/--: no inventories/ there"),
    ],
)
def test_an_option_given_as_double_dash_is_checked_like_any_value(
    project: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    """`--option=--`: Python 3.11's argparse stores [] (a TypeError/AttributeError further on); now the value is
    "--", refused by the usual check with exit 2. FAKE ansible-runner (nothing may run)."""
    monkeypatch.chdir(project)  # found from the cwd, except where --project-dir=-- is the point
    code, out, err, runner = invoke(args)
    assert (code, runner.calls) == (2, [])
    assert f"slipway: error: {message.format(project=project)}" in err
    assert "Traceback" not in err + out


def test_double_dash_paths_and_release_options(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """FAKE ansible-runner: `--artifacts-dir=--` is the directory "--" (as with any other name), `release next
    --tags=--` / `--tag=--` are read as the tags "--"."""
    monkeypatch.chdir(tmp_path)
    code, _out, _err, runner = invoke(["status", "--env", "demo", "--project-dir", str(project), "--artifacts-dir=--"])
    assert code == 0
    assert runner.calls[0].keep_artifacts == Path("--")
    code, out, _err, _r = invoke(["release", "next", "--env", "staging", "--tags=--"])
    assert (code, out) == (0, "v0.0.1\n")
    code, _out, err, _r = invoke(["release", "next", "--env", "production", "--tag=--", "--tags", "v1.0.0"])
    assert code == 2
    assert "--tag '--': not a release tag" in err


def test_an_error_in_the_run_exits_3_notifies_and_shows_no_traceback(project: Path, tmp_path: Path) -> None:
    """FAKE ansible-runner that raises: exit 3 (not 1, "previous release serving"), one line, the report, the
    GitHub outputs and the notification all the same."""

    def crash() -> None:
        raise TypeError("'NoneType' object is not subscriptable")

    output = tmp_path / "output"
    posted: list[tuple[str, dict[str, Any]]] = []
    code, out, err, _r = invoke(
        ["deploy", "--env", "demo", "--project-dir", str(project), "--json"],
        {**WECOM, "GITHUB_OUTPUT": str(output)},
        runner=FakeRunner([], action=crash),
        posted=posted,
    )
    assert code == 3
    data = json.loads(out)
    assert (data["exit_code"], data["outcome"]) == (3, "needs-person")
    assert data["reason"] == (
        "unexpected error while running playbooks/deploy.yml: TypeError: 'NoneType' object is not subscriptable"
    )
    assert "Traceback" not in err
    assert "outcome=needs-person\nexit_code=3\n" in output.read_text()
    assert len(posted) == 1
    assert "needs-person" in json.dumps(posted[0][1])


def test_an_error_before_the_run_exits_3_and_notifies(project: Path, writer: Callable[[Path, str], Path]) -> None:
    """An inventory whose `hosts` is a list (not a map) made the inventory reader raise AttributeError.
    FAKE ansible-runner (nothing runs)."""
    writer(project / "inventories/demo/hosts.yml", "all:\n  children:\n    demo:\n      hosts: [demo-1]\n")
    posted: list[tuple[str, dict[str, Any]]] = []
    code, out, err, runner = invoke(
        ["deploy", "--env", "demo", "--project-dir", str(project)], WECOM, posted=posted
    )
    assert (code, runner.calls) == (3, [])
    assert [line for line in err.splitlines() if line.startswith("slipway: error: unexpected error: ")] == [
        "slipway: error: unexpected error: AttributeError: 'list' object has no attribute 'items'"
    ]
    assert "Traceback" not in err
    assert out.startswith("slipway deploy demo: needs-person - unexpected error: AttributeError")
    assert len(posted) == 1
    # A webhook that is not https:// is not used (the checks that refuse it had not run).
    posted.clear()
    invoke(["deploy", "--env", "demo", "--project-dir", str(project)], {"SLIPWAY_SLACK_WEBHOOK": "http://x"},
           posted=posted)
    assert posted == []


@pytest.mark.parametrize("broken", ["GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT"])
def test_an_unwritable_github_file_exits_3_and_still_notifies(project: Path, tmp_path: Path, broken: str) -> None:
    """A step summary or outputs file that cannot be written (a directory, a missing directory) after a good
    deploy: exit 3 naming it and what the run did, the other file written with that exit code, the notification
    sent. FAKE ansible-runner."""
    files = {"GITHUB_STEP_SUMMARY": tmp_path / "summary.md", "GITHUB_OUTPUT": tmp_path / "output"}
    files[broken] = tmp_path / "missing" / "file" if broken == "GITHUB_OUTPUT" else tmp_path
    posted: list[tuple[str, dict[str, Any]]] = []
    code, out, err, _r = invoke(
        ["deploy", "--env", "demo", "--project-dir", str(project)],
        {**WECOM, **{name: str(path) for name, path in files.items()}},
        posted=posted,
    )
    assert code == 3
    first = out.splitlines()[0]
    assert first.startswith(f"slipway deploy demo: needs-person - {broken} '{files[broken]}' cannot be written (")
    assert first.endswith("(the run itself: deployed - now live: notes-api@demo-1 none -> )")
    assert f"slipway: error: {broken} '{files[broken]}' cannot be written" in err
    assert "Traceback" not in err
    assert len(posted) == 1
    if broken == "GITHUB_STEP_SUMMARY":
        assert "outcome=needs-person\nexit_code=3\n" in files["GITHUB_OUTPUT"].read_text()
    else:
        assert "needs-person" in files["GITHUB_STEP_SUMMARY"].read_text()


def test_release_next_with_an_unwritable_output_exits_3(tmp_path: Path) -> None:
    """The tag is printed; the GITHUB_OUTPUT that cannot take it is one line and exit 3 (no run, no runner)."""
    code, out, err, _r = invoke(
        ["release", "next", "--env", "staging", "--tags", "v1.4.1"], {"GITHUB_OUTPUT": str(tmp_path)}
    )
    assert (code, out) == (3, "v1.4.2\n")
    assert err == f"slipway: error: GITHUB_OUTPUT '{tmp_path}' cannot be written (IsADirectoryError: Is a directory)\n"


def test_a_failing_notification_never_stops_the_run(project: Path) -> None:
    """A webhook call that fails in any way (here a KeyError in the post function) is a warning; the exit code
    stays the run's. FAKE ansible-runner."""

    def post(url: str, payload: dict[str, Any]) -> None:
        raise KeyError("errcode")

    err = io.StringIO()
    code = cli.main(
        ["deploy", "--env", "demo", "--project-dir", str(project)],
        environ={"PATH": os.environ["PATH"], **WECOM},
        run=FakeRunner([stats([{"host": "demo-1", "service": "notes-api", "result": "deployed"}])]),
        post=post,
        streams=cli.Streams(io.StringIO(), err),
    )
    assert code == 0
    assert "slipway: warning: notification to wecom failed (KeyError)" in err.getvalue()
