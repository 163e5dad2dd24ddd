"""Scheduled jobs on a real host (issue 15): the app_release role installs each job's systemd timer after a rollout
(jobs follow the release), the timer's ticks start the host program, which runs the job in a one-off container of
the live release, one run at a time.

jotter's jobs in molecule.yml are quiet (they would tick on the 1st of a month; other tests count jotter's
containers). This module deploys jotter's live version again with a registry whose `tick` job ticks every 10 s and
outlasts its tick (13 s), plus a job `extra` that the restore then drops; it counts the runs over four ticks against
the schedule (a run, a skip, a run, a skip), then deploys molecule.yml's registry again (the timer updated, `extra`'s
units removed).
`broken` exits 3: run now, it shows in status.yml's report and in node exporter's metrics.
"""

from __future__ import annotations

import copy
import itertools
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from scenario_tools import RunPlaybook, counted_run, tick_of

SCENARIO = Path(__file__).resolve().parents[1]
PLAYBOOKS = SCENARIO.parents[1] / "playbooks"
STATE = "/var/lib/slipway/services"
SERVICE = "jotter"
UNITS = "/etc/systemd/system"
# 10 s ticks and a 13 s job: each run outlasts the tick after it (a skip) and ends before the next (a run). Ticks
# of 15 s and a 20 s job showed the same over five ticks, 92 s in all (2026-12-03); these take about 55 s.
TICK = 10
JOB_SECONDS = 13
TICKS = 4
TICK_JOB = {"schedule": f"*:*:0/{TICK}", "timeout": 60,
            "command": ["python", "-c",
                        f"import time; print('tick', flush=True); time.sleep({JOB_SECONDS}); print('tock')"]}
EXTRA_JOB = {"schedule": "*-*-01 04:00:00", "command": ["python", "-c", "print('extra')"]}
DIAGNOSTIC_CONTAINERS = ["jotter-blue", "jotter-green"]


def registry() -> dict[str, Any]:
    """slipway_services as molecule.yml gives it (the scenario's one host's variables)."""
    scenario = yaml.safe_load((SCENARIO / "molecule.yml").read_text(encoding="utf-8"))
    [host_vars] = scenario["provisioner"]["inventory"]["host_vars"].values()
    return copy.deepcopy(host_vars["slipway_services"])


def live_version(host: Any) -> str:
    return str(json.loads(host.check_output(f"cat {STATE}/{SERVICE}/state.json"))["live"]["version"])


def deploy(host: Any, run_playbook: RunPlaybook, services: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    result = run_playbook(PLAYBOOKS / "deploy.yml", "-e", "env=local", "-e", f"service={SERVICE}", "-e",
                          f"version={live_version(host)}", extra_vars={"slipway_services": services})
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return result


def runs(host: Any, job: str) -> list[dict[str, Any]]:
    out = host.run(f"cat {STATE}/{SERVICE}/jobs/{job}.json")
    return list(json.loads(out.stdout)["runs"]) if out.rc == 0 else []


def now(host: Any) -> float:
    return float(host.check_output("date +%s.%N"))


@pytest.fixture(scope="module")
def ticking(host: Any, run_playbook: RunPlaybook) -> Iterator[float]:
    """jotter deployed with `tick` every 15 s (and `extra`); yields the host's time when the timers were in place.
    Afterwards molecule.yml's registry again, and its effect checked."""
    services = registry()
    services[SERVICE]["jobs"].update(tick=TICK_JOB, extra=EXTRA_JOB)
    deploy(host, run_playbook, services)
    yield now(host)
    deploy(host, run_playbook, registry())
    for job in ("tick", "extra"):  # dropped from the registry: units gone, timers stopped
        for unit in (f"slipway-job-{SERVICE}-{job}.timer", f"slipway-job-{SERVICE}-{job}.service"):
            assert not host.file(f"{UNITS}/{unit}").exists, f"{unit} of a dropped job is removed"
        assert not host.service(f"slipway-job-{SERVICE}-{job}.timer").is_running
    assert sorted(json.loads(host.check_output(f"cat {STATE}/{SERVICE}/jobs.json"))["jobs"]) == ["broken", "report"]
    deadline = time.monotonic() + 60  # a run in progress ends; then no job container is left for later tests
    while "jotter-job-" in host.check_output("docker ps -a --format '{{.Names}}'") and time.monotonic() < deadline:
        time.sleep(2)


def test_the_role_installs_one_timer_per_job_on_the_job_host(host: Any, ticking: float) -> None:
    for job in ("report", "broken", "tick", "extra"):
        timer = host.service(f"slipway-job-{SERVICE}-{job}.timer")
        assert timer.is_running and timer.is_enabled, job
    shown = host.check_output(f"systemctl show -p TimersCalendar -p Persistent -p RandomizedDelayUSec "
                              f"slipway-job-{SERVICE}-tick.timer")
    assert f"*-*-* *:*:00/{TICK}" in shown and "Persistent=no" in shown and "RandomizedDelayUSec=0" in shown, shown
    jobs = json.loads(host.check_output(f"cat {STATE}/{SERVICE}/jobs.json"))
    assert sorted(jobs["jobs"]) == ["broken", "extra", "report", "tick"]
    assert "fs-jotter" not in json.dumps(jobs), "jobs.json holds no secret"


def test_each_tick_starts_one_run_and_runs_never_overlap(host: Any, ticking: float) -> None:
    """Over four ticks of 10 s, with a job that takes 13 s: every tick leaves exactly one record, a run or (the
    previous run still going) a skip; the runs' time spans never overlap."""
    start = (int(ticking) // TICK + 1) * TICK  # the first whole tick after the timers were in place
    end = start + (TICKS - 1) * TICK  # the last tick counted
    expected = list(range(start, end + TICK, TICK))

    def window() -> list[dict[str, Any]]:  # the records of the ticks counted (a run's is written when it ends)
        return [r for r in runs(host, "tick") if counted_run(r, start, end, TICK)]

    def ticks_of(records: list[dict[str, Any]]) -> list[int]:
        return sorted(tick_of(r["started"], TICK) for r in records)

    while now(host) < end + JOB_SECONDS + 5:  # a run the last tick started ends and is recorded
        time.sleep(2)
    deadline = time.monotonic() + 60  # on a busy host a record may come later: a wait, not a bound on the job
    while ticks_of(window()) != expected and time.monotonic() < deadline:
        time.sleep(2)
    records = window()
    ticks = ticks_of(records)
    print("tick runs:", [(r["started_at"], r["result"], r.get("seconds")) for r in records])
    assert ticks == expected, (ticks, expected)  # one record per tick, none missed, none twice
    ran = sorted((r for r in records if r["result"] != "skipped"), key=lambda r: r["started"])
    assert ran and any(r["result"] == "skipped" for r in records)
    assert all(r["result"] == "ok" and r["exit_code"] == 0 and "tock" in r["output"] for r in ran), ran
    for first, second in itertools.pairwise(ran):
        assert first["started"] + first["seconds"] <= second["started"], (first, second)


def test_a_failing_job_shows_in_status_and_in_its_metric(host: Any, run_playbook: RunPlaybook,
                                                         ticking: float) -> None:
    before = len(runs(host, "broken"))
    host.run_expect([0], f"systemctl start slipway-job-{SERVICE}-broken.service")  # run it now, as operators do
    deadline = time.monotonic() + 60
    while len(runs(host, "broken")) == before and time.monotonic() < deadline:
        time.sleep(1)
    last = runs(host, "broken")[0]
    assert (last["result"], last["exit_code"], last["trigger"]) == ("failed", 3, "timer"), last
    assert "report failed" in last["output"]

    result = run_playbook(PLAYBOOKS / "status.yml", "-e", "env=local", "-e", f"service={SERVICE}")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "job broken FAILING" in result.stdout and "(exit 3)" in result.stdout, result.stdout[-3000:]

    metrics = host.check_output(f"cat /var/lib/prometheus/node-exporter/slipway_jobs_{SERVICE}.prom")
    assert f'slipway_job_last_exit_code{{service="{SERVICE}",job="broken"}} 3' in metrics
    # What node exporter serves (on 127.0.0.1 of Prometheus' network namespace): its textfile collector read it.
    pid = host.check_output("docker inspect -f '{{.State.Pid}}' prometheus")
    served = host.check_output(f"nsenter -t {pid} -n python3 -c \"import urllib.request; print(urllib.request."
                               f"urlopen('http://127.0.0.1:9100/metrics', timeout=10).read().decode())\"")
    assert f'slipway_job_last_exit_code{{job="broken",service="{SERVICE}"}} 3' in served
    assert f'slipway_job_last_run_failed{{job="broken",service="{SERVICE}"}} 1' in served
    assert "fs-jotter" not in metrics + json.dumps(runs(host, "broken")), "no secret in the job's files"


def test_the_job_playbook_runs_a_job_now_on_the_job_host(host: Any, run_playbook: RunPlaybook,
                                                         ticking: float) -> None:
    """playbooks/job.yml, what `slipway job run` runs: the run is the host program's (lock, record), waited for."""
    result = run_playbook(PLAYBOOKS / "job.yml", "-e", "env=local", "-e", f"service={SERVICE}", "-e",
                          "slipway_job=report")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    last = runs(host, "report")[0]
    assert (last["result"], last["exit_code"], last["trigger"]) == ("ok", 0, "manual"), last
    assert last["output"] == "report\n"
    result = run_playbook(PLAYBOOKS / "job.yml", "-e", "env=local", "-e", f"service={SERVICE}", "-e",
                          "slipway_job=nope")
    assert result.returncode != 0 and "has no job nope on this host" in result.stdout, result.stdout[-3000:]
