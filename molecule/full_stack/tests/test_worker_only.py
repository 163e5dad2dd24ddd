"""A worker-only service on a real host (issue 15): notes-mailer is the sample image running only its worker
(python -m notes_api.worker, a Redis-queue consumer), with no port and no domain. Converge provisioned its database
and Redis user and deployed it: no web container, no edge backend. (a) v1 -> v2 while a job runs: migrate, start and
gate the new worker, then SIGTERM to the old one, which finishes the job in hand; nothing lost (count). (b) The
bad-worker build fails before the end, naming the worker; the old worker keeps running (the same container).
(c) `slipway status` lists it, healthy; a rollback moves it back."""

from __future__ import annotations

import copy
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml
from scenario_tools import RunPlaybook, container_logs, inspect, make_project, slipway, wait_for

PLAYBOOKS = Path(__file__).resolve().parents[3] / "playbooks"
VARS: dict[str, Any] = yaml.safe_load((Path(__file__).resolve().parents[1] / "molecule.yml").read_text())[
    "provisioner"]["inventory"]["host_vars"]["slipway-full_stack"]
SERVICE = "notes-mailer"
STATE = f"/var/lib/slipway/services/{SERVICE}"
DIAGNOSTIC_CONTAINERS = [f"{SERVICE}-blue-mailer", f"{SERVICE}-green-mailer"]


def deploy(run_playbook: RunPlaybook, version: str, **over: Any) -> subprocess.CompletedProcess[str]:
    services = copy.deepcopy(VARS["slipway_services"])
    services[SERVICE].update(over)
    return run_playbook(PLAYBOOKS / "deploy.yml", "-e", "env=local", "-e", f"service={SERVICE}", "-e",
                        f"version={version}", extra_vars={"slipway_services": services}, timeout=600)


def live(host: Any) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(host.check_output(f"cat {STATE}/state.json"))["live"]
    return found


def queue(host: Any, container: str, *args: str) -> dict[str, Any]:
    """notes_api.jobs in a worker container (its REDIS_URL: this service's own ACL user)."""
    found: dict[str, Any] = json.loads(host.check_output(f"docker exec {container} python -m notes_api.jobs "
                                                         f"{' '.join(args)}"))
    return found


def other(colour: str) -> str:
    return "green" if colour == "blue" else "blue"


def test_converge_ran_only_its_worker_and_the_edge_has_no_backend_for_it(host: Any) -> None:
    now = live(host)
    assert (now["version"], now["replicas"]) == ("v1.0.0", 0)
    assert not {"port", "domain"} & set(now)
    assert inspect(host, f"{SERVICE}-{now['colour']}-mailer")["State"]["Running"]
    web = host.run(f"docker ps -a --filter label=slipway.service={SERVICE} --format '{{{{.Names}}}}'").stdout.split()
    assert web and all(name.endswith(("-mailer", "-mailer-kept")) for name in web), web
    config = host.check_output("cat /etc/slipway/edge-proxy/haproxy.cfg")
    assert "be_notes_api" in config and SERVICE not in config and "be_notes_mailer" not in config
    assert not host.file(f"/etc/slipway/edge-proxy/live/{SERVICE}.cfg").exists
    # Its own database (migrated) and Redis user, as any service's.
    tables = host.check_output("docker exec -u postgres postgres psql -X -qtAd notes_mailer -c "
                               "'SELECT version_num FROM alembic_version'")
    assert tables.strip()


def test_v1_to_v2_while_a_job_runs_loses_no_job(host: Any, run_playbook: RunPlaybook) -> None:
    first = deploy(run_playbook, live(host)["version"])  # the scenario's registry (a no-op after converge)
    assert first.returncode == 0, first.stdout[-4000:]
    before = live(host)
    assert before["version"] == "v1.0.0", before
    old, new = f"{SERVICE}-{before['colour']}-mailer", f"{SERVICE}-{other(before['colour'])}-mailer"
    start = queue(host, old, "stats")
    # The job must outlast the rollout up to the old worker's SIGTERM (10-35 s measured here, other scenarios beside
    # it), and end within its stop_timeout (60 s) after it.
    [long_job] = queue(host, old, "enqueue", "--seconds", "45")["ids"]
    wait_for(lambda: f"job {long_job} started" in container_logs(host, old), 60, "the old worker took the job")

    began = time.monotonic()
    result = deploy(run_playbook, "v2.0.0")
    took = time.monotonic() - began

    assert result.returncode == 0, result.stdout[-4000:]
    now = live(host)
    assert (now["version"], now["colour"]) == ("v2.0.0", other(before["colour"]))
    stopped, old_log = inspect(host, old)["State"], container_logs(host, old)
    print(f"worker-only rollout with a job in hand: {took:.1f}s; old worker exit {stopped['ExitCode']}")
    assert (stopped["Running"], stopped["ExitCode"]) == (False, 0), old_log
    assert old_log.index(f"job {long_job} finished") > old_log.index("signal 15: finishing the job in hand"), old_log
    assert inspect(host, new)["State"]["Running"]

    [next_job] = queue(host, new, "enqueue", "--seconds", "1")["ids"]
    wait_for(lambda: f"job {next_job} finished" in container_logs(host, new), 60, "the new worker finished the job")
    end = queue(host, new, "stats")
    assert end["enqueued"] - start["enqueued"] == 2
    assert end["finished_ids"][start["finished"]:] == [long_job, next_job]  # each once, nothing lost
    assert end["queued"] == 0


def test_a_worker_that_crashes_on_start_leaves_the_old_worker_running(host: Any, run_playbook: RunPlaybook) -> None:
    before = live(host)
    colour, idle = before["colour"], other(before["colour"])
    worker = inspect(host, f"{SERVICE}-{colour}-mailer")
    assert worker["State"]["Running"]

    began = time.monotonic()
    result = deploy(run_playbook, "v2.0.0-badworker", migrate_command=[])  # its schema is the live one's
    print(f"failed worker-only release: {time.monotonic() - began:.1f}s")
    output = result.stdout + result.stderr

    assert result.returncode != 0, output[-4000:]
    assert f"worker mailer ({SERVICE}-{idle}-mailer) exited 1" in output, output[-4000:]
    assert live(host) == before
    now = inspect(host, f"{SERVICE}-{colour}-mailer")
    assert (now["Id"], now["State"]["StartedAt"]) == (worker["Id"], worker["State"]["StartedAt"])
    assert now["State"]["Running"]
    assert not host.run(f"docker ps -a --filter label=slipway.service={SERVICE} "
                        "--filter label=slipway.version=v2.0.0-badworker -q").stdout.strip()


def test_slipway_status_lists_it_and_a_rollback_moves_it_back(host: Any, run_playbook: RunPlaybook,
                                                              tmp_path: Path) -> None:
    project = make_project(tmp_path / "ops", VARS, "slipway-full_stack")
    status = slipway(project, "status", "--env", "local", "--json")
    assert status.returncode in (0, 4), status.stdout[-3000:] + status.stderr[-3000:]  # 4: jotter's failing job
    records = {r["service"]: r for r in json.loads(status.stdout)["records"]}
    mine = records[SERVICE]
    assert (mine["healthy"], mine["version"]) == (True, "v2.0.0"), mine
    assert str(mine["message"]).startswith("worker-only (no web process); workers: "), mine

    before = live(host)
    result = run_playbook(PLAYBOOKS / "rollback.yml", "-e", "env=local", "-e", f"service={SERVICE}")
    assert result.returncode == 0, result.stdout[-4000:]
    now = live(host)
    assert (now["version"], now["colour"]) == ("v1.0.0", other(before["colour"]))
    assert inspect(host, f"{SERVICE}-{now['colour']}-mailer")["State"]["Running"]
    assert not inspect(host, f"{SERVICE}-{before['colour']}-mailer")["State"]["Running"]


def test_a_removed_service_s_job_units_go_on_the_next_deploy(host: Any, run_playbook: RunPlaybook) -> None:
    """A job of the worker-only service runs with its live worker's environment; then the service leaves the
    registry and the next deploy (of another service) removes its timer, units, jobs file and metrics."""
    unit = f"/etc/systemd/system/slipway-job-{SERVICE}-ping"
    ping = {"schedule": "*-*-01 04:00:00", "timeout": 60,
            "command": ["python", "-c", "import os; print(os.environ['REDIS_KEY_PREFIX'])"]}
    added = deploy(run_playbook, live(host)["version"], jobs={"ping": ping})  # a no-op rollout installs the jobs
    assert added.returncode == 0, added.stdout[-4000:]
    assert host.run(f"systemctl is-active slipway-job-{SERVICE}-ping.timer").stdout.strip() == "active"
    ran = host.run(f"/usr/local/sbin/slipway-release job run {SERVICE} ping")
    assert ran.rc == 0 and f"{SERVICE}:" in ran.stdout, ran.stdout + ran.stderr
    assert host.file(f"/var/lib/prometheus/node-exporter/slipway_jobs_{SERVICE}.prom").exists

    services = copy.deepcopy(VARS["slipway_services"])
    del services[SERVICE]
    jotter = json.loads(host.check_output("cat /var/lib/slipway/services/jotter/state.json"))["live"]["version"]
    result = run_playbook(PLAYBOOKS / "deploy.yml", "-e", "env=local", "-e", "service=jotter", "-e",
                          f"version={jotter}", extra_vars={"slipway_services": services}, timeout=600)

    assert result.returncode == 0, result.stdout[-4000:]
    assert not host.file(f"{unit}.timer").exists and not host.file(f"{unit}.service").exists
    assert host.run(f"systemctl is-active slipway-job-{SERVICE}-ping.timer").stdout.strip() != "active"
    assert not host.file(f"{STATE}/jobs.json").exists
    assert not host.file(f"/var/lib/prometheus/node-exporter/slipway_jobs_{SERVICE}.prom").exists
    assert host.file("/etc/systemd/system/slipway-job-jotter-report.timer").exists  # another service's stay
    assert host.file(f"{STATE}/history.jsonl").exists  # the record of what ran stays
