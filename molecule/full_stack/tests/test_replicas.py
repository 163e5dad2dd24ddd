"""Replicas on a real host (issue 12): jotter scaled from 1 to 2 containers per colour and back, under load through
the edge, with 0 failed requests. The edge learns the count when it is provisioned (infra.yml --tags edge_proxy);
the next deploy starts, gates and switches both replicas, the edge balances across them, and a reload keeps both
in rotation (the live file names the second)."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from scenario_tools import RunPlaybook, start_load, wait_for

PLAYBOOKS = Path(__file__).resolve().parents[3] / "playbooks"
VARS: dict[str, Any] = yaml.safe_load((Path(__file__).resolve().parents[1] / "molecule.yml").read_text())[
    "provisioner"]["inventory"]["host_vars"]["slipway-full_stack"]
WORK = "/tmp/slipway-replicas"  # noqa: S108 - inside the test host
SERVICE = "jotter"


def registry(replicas: int) -> dict[str, Any]:
    services = copy.deepcopy(VARS["slipway_services"])
    services[SERVICE]["replicas"] = replicas
    return {"slipway_services": services}


def ok(result: subprocess.CompletedProcess[str]) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return output


def provision_edge(run_playbook: RunPlaybook, replicas: int) -> None:
    ok(run_playbook(PLAYBOOKS / "infra.yml", "-e", "env=local", "--tags", "edge_proxy",
                    extra_vars=registry(replicas)))


def deploy(run_playbook: RunPlaybook, version: str, replicas: int) -> str:
    return ok(run_playbook(PLAYBOOKS / "deploy.yml", "-e", "env=local", "-e", f"service={SERVICE}", "-e",
                           f"version={version}", extra_vars=registry(replicas)))


def edge_status(host: Any) -> dict[str, Any]:
    status: dict[str, Any] = json.loads(host.check_output(f"slipway-proxy status {SERVICE}"))
    return status


def live(host: Any) -> dict[str, Any]:
    state = json.loads(host.check_output(f"cat /var/lib/slipway/services/{SERVICE}/state.json"))
    found: dict[str, Any] = state["live"]
    return found


def running(host: Any, name: str) -> bool:
    return bool(host.run(f"docker inspect -f '{{{{.State.Running}}}}' {name}").stdout.strip() == "true")


def test_scaling_to_two_replicas_and_back_fails_no_request(host: Any, run_playbook: RunPlaybook) -> None:
    load = start_load(host, WORK, "jotter.localhost", ["/version", "/health"], 240)
    try:
        provision_edge(run_playbook, 2)
        before = live(host)
        assert int(before.get("replicas") or 1) == 1
        colour = "green" if before["colour"] == "blue" else "blue"

        deploy(run_playbook, before["version"], 2)  # the same release, two replicas: a new colour all the same

        now = live(host)
        assert (now["version"], now["colour"], now["replicas"]) == (before["version"], colour, 2)
        names = [f"{SERVICE}-{colour}", f"{SERVICE}-{colour}-2"]
        assert all(running(host, name) for name in names)
        members = edge_status(host)["servers"][colour]["members"]
        assert [m["server"] for m in members] == names
        assert all(m["status"] == "UP" for m in members), members
        live_file = host.check_output(f"cat /etc/slipway/edge-proxy/live/{SERVICE}.cfg")
        assert "SLIPWAY_LIVE_jotter_R2 1" in live_file

        # A reload (what any provisioning of the edge may do) keeps both replicas in rotation.
        host.run_expect([0], "slipway-proxy reload")
        # Until its first check after the reload HAProxy reads each server "UP 1/3" (check INI): wait for checked.
        wait_for(lambda: edge_status(host)["servers"][colour]["serving"], 30, "both replicas checked after the reload")
        members = edge_status(host)["servers"][colour]["members"]
        assert [m["status"] for m in members] == ["UP", "UP"], members
        before_counts = [m["total_sessions"] for m in members]
        host.run_expect([0], "sleep 2")
        after_counts = [m["total_sessions"] for m in edge_status(host)["servers"][colour]["members"]]
        grew = [after > prior for after, prior in zip(after_counts, before_counts, strict=True)]
        assert grew == [True, True], (before_counts, after_counts)  # the edge balances across both

        # Back to one: the edge first, then the next release runs one container per colour.
        provision_edge(run_playbook, 1)
        deploy(run_playbook, before["version"], 1)  # the kept release: its image ran here, no migration
        back = live(host)
        assert (back["version"], back["replicas"]) == (before["version"], 1)
        assert not running(host, names[1])
    finally:
        result = load.stop()
    if result["failed"]:
        pytest.fail(f"{result['failed']} of {result['requests']} failed: {result['errors']}")
    assert result["requests"] > 300, result["requests"]
