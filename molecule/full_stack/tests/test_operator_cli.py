"""`slipway exec` and `slipway logs` end to end (issue 14, item 12): the real CLI, ansible-runner, the host program
and Docker, against the full_stack host (after the other test files) or the local demo host.

The CLI runs against a throwaway operations repository (the project's playbooks, roles and collections linked, an
inventory `local` whose one host is this host's container, reached with the Docker connection, and the scenario's
own variables) in which notes-api logs each request (LOG_LEVEL=debug, for the logs tests) and carries a seeded
secret in secret_env; the module first deploys notes-api v2.0.0 with that configuration and, at the end, deploys
the version that was live before with the original configuration again. The registry also names ghost-api, never
deployed (exec refuses it).

Against the demo host instead of Molecule's instance (the tests then read the demo inventory's variables):
    SLIPWAY_E2E_HOST=slipway-local pytest -p no:cacheprovider --hosts=docker://slipway-local \\
        molecule/full_stack/tests/test_operator_cli.py
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import secrets
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from scenario_tools import EDGE_ADDRESS, SLIPWAY, cli_environment, slipway
from scenario_tools import make_project as make_project_for

PROJECT = Path(__file__).resolve().parents[3]
SCENARIO = Path(__file__).resolve().parents[1]
CONTAINER = os.environ.get("SLIPWAY_E2E_HOST") or "slipway-full_stack"
SERVICE = "notes-api"
VERSION = "v2.0.0"
STATE = f"/var/lib/slipway/services/{SERVICE}/state.json"
PROBE = (
    "import http.client,sys;c=http.client.HTTPConnection(sys.argv[1],80,timeout=5);"
    "c.request('GET',sys.argv[3],headers={'Host':sys.argv[2]});print(c.getresponse().status)"
)
DIAGNOSTIC_CONTAINERS = ("notes-api-blue", "notes-api-green", "edge-proxy")


def scenario_vars() -> dict[str, Any]:
    """The variables the host was converged with: Molecule's host_vars, or the demo inventory's group_vars."""
    if os.environ.get("SLIPWAY_E2E_HOST"):
        merged: dict[str, Any] = {}
        for path in sorted((PROJECT / "inventories/local/group_vars/local").glob("*.yml")):
            merged.update(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
        return merged
    molecule = yaml.safe_load((SCENARIO / "molecule.yml").read_text(encoding="utf-8"))
    return dict(molecule["provisioner"]["inventory"]["host_vars"]["slipway-full_stack"])


def make_project(root: Path, variables: dict[str, Any]) -> Path:
    return make_project_for(root, variables, CONTAINER)


def on_host(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", "exec", CONTAINER, *argv], capture_output=True, text=True, check=False,
                          timeout=60)


def live() -> dict[str, Any]:
    return dict(json.loads(on_host("cat", STATE).stdout)["live"])


def request(path: str) -> None:
    """GET `path` from notes-api through the edge proxy, from inside the host (the edge is on the host's network)."""
    proxy = EDGE_ADDRESS
    domain = scenario_vars()["slipway_services"][SERVICE]["domain"]
    answer = on_host("python3", "-c", PROBE, proxy, domain, path)
    assert answer.stdout.strip() == "200", answer.stdout + answer.stderr


def explain(run: subprocess.CompletedProcess[str]) -> str:
    return f"rc {run.returncode}\n--- stdout\n{run.stdout[-3000:]}\n--- stderr\n{run.stderr[-3000:]}"


@dataclass(frozen=True)
class Ops:
    project: Path
    seed: str
    secrets: list[str]  # every secret value of the inventory, the seed included


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ops]:
    if shutil.which("docker") is None or on_host("true").returncode != 0:
        pytest.skip(f"the host container {CONTAINER} is not running")
    original = scenario_vars()
    seed = "e2e-seed-" + secrets.token_hex(12)
    changed = json.loads(json.dumps(original))
    notes = changed["slipway_services"][SERVICE]
    notes["env"] = {**(notes.get("env") or {}), "LOG_LEVEL": "debug"}  # uvicorn's access log: one line per request
    notes["secret_env"] = {**(notes.get("secret_env") or {}), "E2E_SEED": seed}
    changed["slipway_services"]["ghost-api"] = {"image": "slipway/notes-api", "version": "v1.0.0", "port": 8000,
                                                "domain": "ghost.localhost"}
    project = make_project(tmp_path_factory.mktemp("ops"), changed)
    before = live()["version"]
    deployed = slipway(project, "deploy", "--env", "local", "--service", SERVICE, "--version", VERSION)
    assert deployed.returncode == 0, explain(deployed)
    values = [str(v) for k, v in original.items() if k.startswith("vault_") and len(str(v)) >= 8]
    try:
        yield Ops(project, seed, [seed, *values])
    finally:
        restore = make_project(tmp_path_factory.mktemp("restore"), original)
        back = slipway(restore, "deploy", "--env", "local", "--service", SERVICE, "--version", before)
        assert back.returncode == 0, explain(back)


# ---------------------------------------------------------------------------------------------------------- exec
def test_exec_alembic_current_names_the_live_head(ops: Ops) -> None:
    run = slipway(ops.project, "exec", "--env", "local", "--service", SERVICE, "--", "alembic", "current")
    assert run.returncode == 0, explain(run)
    revision = live()["migration_revision"]
    assert f"{revision} (head)" in run.stdout, explain(run)
    assert f"ran - `alembic current` on {CONTAINER} ({SERVICE} {VERSION}, {live()['colour']}) exited 0" in run.stderr


def test_exec_passes_the_command_exit_status_through(ops: Ops) -> None:
    run = slipway(ops.project, "exec", "--env", "local", "--service", SERVICE, "--", "sh", "-c", "exit 7")
    assert run.returncode == 7, explain(run)
    run = slipway(ops.project, "exec", "--env", "local", "--service", SERVICE, "--json", "--",
                  "sh", "-c", "echo from the one-off; exit 3")
    data = json.loads(run.stdout)
    assert (run.returncode, data["exit_code"], data["outcome"]) == (3, 3, "ran"), explain(run)
    assert data["records"][0]["stdout"] == "from the one-off\n"
    assert data["records"][0]["version"] == VERSION


def test_exec_runs_hardened_with_a_timeout(ops: Ops) -> None:
    run = slipway(ops.project, "exec", "--env", "local", "--service", SERVICE, "--",
                  "sh", "-c", "id -u; grep CapEff /proc/self/status; touch /probe 2>/dev/null || echo read-only")
    assert run.returncode == 0, explain(run)
    assert "CapEff:\t0000000000000000" in run.stdout and "read-only" in run.stdout
    assert run.stdout.splitlines()[0] != "0"  # the image's own user, not root
    stopped = slipway(ops.project, "exec", "--env", "local", "--service", SERVICE, "--timeout", "2", "--",
                      "sleep", "60")
    assert stopped.returncode == 124, explain(stopped)
    left = on_host("docker", "ps", "-a", "--filter", "label=slipway.role=exec", "--format", "{{.Names}}")
    assert left.stdout.strip() == ""


def test_exec_secret_arrives_and_leaks_nowhere(ops: Ops, tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    run = slipway(ops.project, "exec", "--env", "local", "--service", SERVICE, "--artifacts-dir", str(artifacts),
                  "--", "sh", "-c", 'printf %s "$E2E_SEED" | sha256sum')
    assert run.returncode == 0, explain(run)
    assert run.stdout.split()[0] == hashlib.sha256(ops.seed.encode()).hexdigest()  # it reached the container
    texts = {"stdout": run.stdout, "stderr": run.stderr}
    for path in artifacts.rglob("*"):
        if path.is_file():
            texts[str(path)] = path.read_text(encoding="utf-8", errors="replace")
    assert any("job_events" in name for name in texts), "ansible-runner left no artifacts to check"
    leaks = [(name, value[:6] + "...") for name, text in texts.items() for value in ops.secrets if value in text]
    assert leaks == []
    # Not containerd's own /tmp/runc-process* (go-runc writes each `docker exec`'s process spec there, the container's
    # environment included, and removes it once the process started: a HEALTHCHECK run of a live colour, whose
    # environment holds the service's secrets by design, at the moment of the grep; CI, 2026-12-05).
    on_disk = on_host("grep", "-rlF", "--exclude=runc-process*", ops.seed, "/var/lib/slipway", "/tmp",  # noqa: S108
                      "/root")
    assert on_disk.returncode == 1, on_disk.stdout  # grep found nothing on the host either


def test_exec_without_live_release_says_so(ops: Ops) -> None:
    run = slipway(ops.project, "exec", "--env", "local", "--service", "ghost-api", "--", "true")
    assert run.returncode == 3, explain(run)
    assert "the command did not run: ghost-api has no live release on this host" in run.stderr


def test_exec_bad_input_is_refused_before_the_host(ops: Ops) -> None:
    for args in ((), ("--timeout", "0", "--", "true"), ("--host", "elsewhere", "--", "true")):
        run = slipway(ops.project, "exec", "--env", "local", "--service", SERVICE, *args)
        assert run.returncode == 2, explain(run)
        assert "slipway: error:" in run.stderr and "play:" not in run.stderr


# ---------------------------------------------------------------------------------------------------------- logs
def test_logs_show_a_request_the_test_made(ops: Ops) -> None:
    marker = f"logs-probe-{secrets.token_hex(4)}"
    request(f"/version?{marker}")
    run = slipway(ops.project, "logs", "--env", "local", "--service", SERVICE, "--tail", "200")
    assert run.returncode == 0, explain(run)
    assert marker in run.stdout + run.stderr, explain(run)  # uvicorn's access log (its stderr)
    colour = live()["colour"]
    # The web container and the colour's worker, each line prefixed with its container.
    assert f"logs of {SERVICE}-{colour}, {SERVICE}-{colour}-mailer ({VERSION}, live)" in run.stderr
    lines = (run.stdout + run.stderr).splitlines()
    assert any(line.startswith(f"{SERVICE}-{colour} | ") and marker in line for line in lines), explain(run)


def test_logs_since_filters_older_lines(ops: Ops) -> None:
    early, late = (f"since-{name}-{secrets.token_hex(4)}" for name in ("early", "late"))
    request(f"/version?{early}")
    time.sleep(2)
    cut = time.time()
    time.sleep(1)
    request(f"/version?{late}")
    for since in (f"{cut:.3f}", datetime.fromtimestamp(cut, UTC).isoformat()):
        run = slipway(ops.project, "logs", "--env", "local", "--service", SERVICE, "--since", since)
        assert run.returncode == 0, explain(run)
        assert late in run.stdout + run.stderr and early not in run.stdout + run.stderr, explain(run)
    wrong = slipway(ops.project, "logs", "--env", "local", "--service", SERVICE, "--since", "yesterday")
    assert wrong.returncode == 2 and "is not a time docker understands" in wrong.stderr


def test_logs_follow_streams_new_lines_until_ctrl_c(ops: Ops) -> None:
    env = cli_environment()
    follow = subprocess.Popen(
        [SLIPWAY, "logs", "--env", "local", "--service", SERVICE, "--follow", "--tail", "0",
         "--project-dir", str(ops.project)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert follow.stdout is not None
    def read() -> None:
        for line in follow.stdout or []:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()

    def wait_for(text: str, seconds: float, poke: Callable[[], Any] | None = None) -> list[str]:
        seen: list[str] = []
        deadline = time.monotonic() + seconds
        next_poke = 0.0
        while time.monotonic() < deadline:
            if poke is not None and time.monotonic() >= next_poke:
                poke()
                next_poke = time.monotonic() + 2
            try:
                seen.append(lines.get(timeout=0.5))
            except queue.Empty:
                continue
            if text in seen[-1]:
                return seen
        follow.kill()
        raise AssertionError(f"{text!r} not streamed within {seconds}s; got {seen}")

    try:
        wait_for("slipway-release: logs of", 90)  # waits, not bounds: the CI runs three suites on two cores
        marker = f"follow-{secrets.token_hex(4)}"
        # Made after the follow started, and again every 2 s until one shows: each container's `docker logs
        # --follow --tail 0` attaches a moment after the header line, and a request before that is not streamed.
        wait_for(marker, 90, poke=lambda: request(f"/version?{marker}"))
        follow.send_signal(signal.SIGINT)
        assert follow.wait(timeout=30) == 0
    finally:
        if follow.poll() is None:
            follow.kill()
    # Nothing of the follow keeps running on the host: the host program ends its `docker logs` children on its own
    # after the client went, a moment later on a busy host (a wait, not a bound).
    deadline = time.monotonic() + 20
    while (left := on_host("sh", "-c", "ps -eo args | grep '[d]ocker logs' || true")).stdout.strip():
        assert time.monotonic() < deadline, left.stdout
        time.sleep(0.5)


def test_logs_of_the_kept_colour(ops: Ops) -> None:
    kept = "blue" if live()["colour"] == "green" else "green"
    run = slipway(ops.project, "logs", "--env", "local", "--service", SERVICE, "--colour", kept, "--tail", "5")
    assert run.returncode == 0, explain(run)
    assert f"logs of {SERVICE}-{kept}, {SERVICE}-{kept}-mailer (" in run.stderr
    assert "kept for a rollback" in run.stderr


# ------------------------------------------------------------------------------------------- deploy and rollback
# `slipway deploy`/`rollback` as the workflows run them: exit codes, the JSON result, the step summary and the
# outputs file, a `--check` plan that changes nothing, bad input leaving the host untouched, and no secret in any
# output or artifact. They come last in this module: the live release is VERSION again when they end.
VERSION_BODY = (
    "import http.client,json,sys;c=http.client.HTTPConnection(sys.argv[1],80,timeout=5);"
    "c.request('GET','/version',headers={'Host':sys.argv[2]});print(json.load(c.getresponse())['version'])"
)
HOST_LABEL = f"{SERVICE}@{CONTAINER}"


def served_version() -> str:
    domain = scenario_vars()["slipway_services"][SERVICE]["domain"]
    answer = on_host("python3", "-c", VERSION_BODY, EDGE_ADDRESS, domain)
    assert answer.returncode == 0, answer.stdout + answer.stderr
    return answer.stdout.strip()


def host_state() -> str:
    return on_host("cat", STATE).stdout


def workflow_run(ops: Ops, tmp: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """`slipway <args> --json` with a GitHub step summary, an outputs file and ansible-runner's artifacts in `tmp`."""
    env = {"GITHUB_STEP_SUMMARY": str(tmp / "summary.md"), "GITHUB_OUTPUT": str(tmp / "outputs.txt")}
    run = slipway(ops.project, *args, "--env", "local", "--json", "--artifacts-dir", str(tmp / "artifacts"), env=env)
    return run, json.loads(run.stdout or "{}")


def outputs(tmp: Path) -> dict[str, str]:
    lines = (tmp / "outputs.txt").read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def test_deploy_check_and_rollback_through_the_cli(ops: Ops, tmp_path: Path) -> None:
    # The live release is VERSION with this module's configuration: deploying it again has nothing to do.
    again, answer = workflow_run(ops, tmp_path / "noop", "deploy", "--service", SERVICE, "--version", VERSION)
    assert (again.returncode, answer.get("outcome")) == (0, "noop"), explain(again)

    # --check plans v1.0.0 and changes nothing on the host.
    before = host_state()
    plan, planned = workflow_run(ops, tmp_path / "plan", "deploy", "--service", SERVICE, "--version", "v1.0.0",
                                 "--check")
    assert (plan.returncode, planned.get("outcome")) == (0, "planned"), explain(plan)
    assert planned["reason"] == f"would deploy {HOST_LABEL} {VERSION} -> v1.0.0"
    assert host_state() == before and served_version() == VERSION

    run, result = workflow_run(ops, tmp_path / "deploy", "deploy", "--service", SERVICE, "--version", "v1.0.0")
    assert (run.returncode, result.get("outcome"), result.get("exit_code")) == (0, "deployed", 0), explain(run)
    assert served_version() == "v1.0.0"
    out = outputs(tmp_path / "deploy")
    assert (out["outcome"], out["exit_code"], out["services"]) == ("deployed", "0", SERVICE)
    summary = (tmp_path / "deploy/summary.md").read_text(encoding="utf-8")
    assert f"| {CONTAINER} | {SERVICE} | deployed | v1.0.0 | {VERSION} |" in summary
    state = json.loads(host_state())
    assert (state["live"]["version"], state["kept"]["version"]) == ("v1.0.0", VERSION)

    # That deploy started a container with the seeded secret: no secret reached its output, summary or artifacts.
    texts = {"stdout": run.stdout, "stderr": run.stderr}
    for path in (tmp_path / "deploy").rglob("*"):
        if path.is_file():
            texts[str(path)] = path.read_text(encoding="utf-8", errors="replace")
    assert any("job_events" in name for name in texts), "ansible-runner left no artifacts to check"
    leaks = [(name, value[:6] + "...") for name, text in texts.items() for value in ops.secrets if value in text]
    assert leaks == []

    back, answer = workflow_run(ops, tmp_path / "rollback", "rollback", "--service", SERVICE)
    assert (back.returncode, answer.get("outcome")) == (0, "deployed"), explain(back)
    assert served_version() == VERSION == live()["version"]


def test_a_failed_deploy_exits_1_and_the_previous_release_serves(ops: Ops, tmp_path: Path) -> None:
    before = served_version()
    run, result = workflow_run(ops, tmp_path, "deploy", "--service", SERVICE, "--version", "v4.0.0-badmigration")
    assert (run.returncode, result.get("outcome")) == (1, "failed"), explain(run)
    assert outputs(tmp_path)["failed"] == HOST_LABEL
    assert "migrat" in (tmp_path / "summary.md").read_text(encoding="utf-8").lower()
    assert served_version() == before == live()["version"]


@pytest.mark.parametrize(
    "args",
    [
        ("deploy", "--env", "nosuch"),
        ("deploy", "--env", "local", "--service", "nosuch-api"),
        ("deploy", "--env", "local", "--service", SERVICE, "--version", "1.2"),
        ("deploy", "--env", "local", "--service", SERVICE, "--version", "v1.2.3; rm -rf /"),
        ("deploy", "--env", "local", "--service", SERVICE, "--version", "v" * 10_000),
        ("rollback", "--env", "local", "--service", SERVICE, "--to", "latest"),
    ],
)
def test_bad_input_exits_2_and_leaves_the_host_untouched(ops: Ops, args: tuple[str, ...]) -> None:
    before = host_state()
    run = slipway(ops.project, *args)
    assert run.returncode == 2, explain(run)
    assert "error:" in run.stderr and "play:" not in run.stderr  # refused by the CLI, no play started
    assert host_state() == before
