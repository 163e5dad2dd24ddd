"""Workers on a real host (issue 15): notes-api's `mailer` (python -m notes_api.worker, a Redis-queue consumer) moves
with every release. (a) A rollout while a job runs: the old worker gets SIGTERM after the switch, finishes the job
in hand within its stop_timeout and exits 0; the new worker takes the next job; every job enqueued is finished once.
(b) A release whose worker crashes on start (v2.0.0-badworker) fails before the switch: the result names the
worker, the old web and the old worker keep running, untouched."""

from __future__ import annotations

import copy
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml
from scenario_tools import EDGE_ADDRESS, RunPlaybook, container_logs, inspect, wait_for

PLAYBOOKS = Path(__file__).resolve().parents[3] / "playbooks"
VARS: dict[str, Any] = yaml.safe_load((Path(__file__).resolve().parents[1] / "molecule.yml").read_text())[
    "provisioner"]["inventory"]["host_vars"]["slipway-full_stack"]
SERVICE = "notes-api"
STATE = f"/var/lib/slipway/services/{SERVICE}"
DIAGNOSTIC_CONTAINERS = ["notes-api-blue-mailer", "notes-api-green-mailer", "notes-api-blue", "notes-api-green"]
VERSION = ("import sys,urllib.request;r=urllib.request.Request('http://%s/version' % sys.argv[1], "
           "headers={'Host': 'notes.localhost'});print(urllib.request.urlopen(r, timeout=5).read().decode())")


def registry(**over: Any) -> dict[str, Any]:
    """The scenario's registry with notes-api changed by `over` (e.g. an env mark: a new release of the same image)."""
    services = copy.deepcopy(VARS["slipway_services"])
    services[SERVICE].update(over)
    return {"slipway_services": services}


def deploy(run_playbook: RunPlaybook, version: str, **over: Any) -> subprocess.CompletedProcess[str]:
    return run_playbook(PLAYBOOKS / "deploy.yml", "-e", "env=local", "-e", f"service={SERVICE}", "-e",
                        f"version={version}", extra_vars=registry(**over), timeout=600)


def live(host: Any) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(host.check_output(f"cat {STATE}/state.json"))["live"]
    return found


def jobs(host: Any, colour: str, *args: str) -> dict[str, Any]:
    """notes_api.jobs in the live web container (its REDIS_URL: the service's ACL user)."""
    found: dict[str, Any] = json.loads(host.check_output(
        f"docker exec {SERVICE}-{colour} python -m notes_api.jobs {' '.join(args)}"))
    return found


def served(host: Any) -> str:
    return str(json.loads(host.check_output(f"python3 -c \"{VERSION}\" {EDGE_ADDRESS}"))["version"])


def test_a_rollout_while_a_job_runs_loses_no_job(host: Any, run_playbook: RunPlaybook) -> None:
    first = deploy(run_playbook, live(host)["version"])  # the scenario's registry (a test before may have changed it)
    assert first.returncode == 0, first.stdout[-4000:]
    before = live(host)
    old, new = before["colour"], "green" if before["colour"] == "blue" else "blue"
    old_worker, new_worker = f"{SERVICE}-{old}-mailer", f"{SERVICE}-{new}-mailer"
    assert inspect(host, old_worker)["State"]["Running"], container_logs(host, old_worker)
    start = jobs(host, old, "stats")

    [long_job] = jobs(host, old, "enqueue", "--seconds", "15")["ids"]
    wait_for(lambda: f"job {long_job} started" in container_logs(host, old_worker), 60, "the old worker took the job")
    began = time.monotonic()
    # The same image with another environment: a new release (no migration), both colours' workers in play.
    env = {**VARS["slipway_services"][SERVICE]["env"], "WORKER_TEST_MARK": str(int(time.time()))}
    result = deploy(run_playbook, before["version"], env=env)
    took = time.monotonic() - began

    assert result.returncode == 0, result.stdout[-4000:]
    assert (live(host)["colour"], served(host)) == (new, before["version"])
    stopped = inspect(host, old_worker)["State"]
    old_log = container_logs(host, old_worker)
    print(f"rollout with a job in hand: {took:.1f}s; old worker exit {stopped['ExitCode']}\n{old_log[-1500:]}")
    assert (stopped["Running"], stopped["ExitCode"]) == (False, 0), old_log
    signalled = old_log.index("signal 15: finishing the job in hand")
    assert old_log.index(f"job {long_job} finished") > signalled, old_log  # SIGTERM came mid-job; it finished it
    assert "stopped cleanly" in old_log
    assert inspect(host, new_worker)["State"]["Running"]

    [next_job] = jobs(host, new, "enqueue", "--seconds", "1")["ids"]
    wait_for(lambda: f"job {next_job} finished" in container_logs(host, new_worker), 60,
             "the new worker finished the job")
    end = jobs(host, new, "stats")
    assert end["enqueued"] - start["enqueued"] == 2
    assert end["finished_ids"][start["finished"]:] == [long_job, next_job]  # each once, nothing lost
    assert end["queued"] == 0


def test_a_worker_that_crashes_on_start_fails_the_release_before_the_switch(host: Any,
                                                                           run_playbook: RunPlaybook) -> None:
    before = live(host)
    colour, idle = before["colour"], "green" if before["colour"] == "blue" else "blue"
    web, worker = inspect(host, f"{SERVICE}-{colour}"), inspect(host, f"{SERVICE}-{colour}-mailer")
    assert worker["State"]["Running"]

    began = time.monotonic()
    result = deploy(run_playbook, "v2.0.0-badworker", migrate_command=[])  # its schema is the live one's
    took = time.monotonic() - began
    output = result.stdout + result.stderr
    print(f"failed release (worker crash): {took:.1f}s")

    assert result.returncode != 0, output[-4000:]
    named = f"worker mailer ({SERVICE}-{idle}-mailer) exited 1"  # maybe "(restarted N time(s) by Docker)"
    assert named in output and "during its gate" in output, output[-4000:]
    assert live(host) == before
    assert served(host) == before["version"]
    for name, was in ((f"{SERVICE}-{colour}", web), (f"{SERVICE}-{colour}-mailer", worker)):
        now = inspect(host, name)
        assert now["Id"] == was["Id"] and now["State"]["StartedAt"] == was["State"]["StartedAt"], name
        assert now["State"]["Running"], name
    idle_worker = inspect(host, f"{SERVICE}-{idle}-mailer")
    assert not idle_worker or idle_worker["Config"]["Labels"]["slipway.version"] != "v2.0.0-badworker"
    assert not host.run("docker ps -a --filter label=slipway.version=v2.0.0-badworker -q").stdout.strip()
    last = json.loads(host.check_output(f"tail -n 1 {STATE}/history.jsonl"))
    assert (last["result"], last["failed_phase"]) == ("failed", "health")
    assert "worker mailer" in last["message"]
