"""The rollout on a fully provisioned host, in order (issue 5, "What it must show").

converge deployed v1 of both services. These tests then, in this order: deploy v2 (colours switch); try v3 whose
health fails (v2 keeps serving); try v4 whose migration fails (schema and alembic_version unchanged, v2 keeps
serving); roll back (v1 serves again from its kept container); redeploy the live version (a no-op: nothing
restarts); and a concurrent deploy of the same service is refused while the first holds the lock. state.json and
history.jsonl are checked after each step. The tests share the host's state, so they run in file order.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from scenario_tools import EDGE_ADDRESS

PLAYBOOKS = Path(__file__).resolve().parents[3] / "playbooks"
STATE = "/var/lib/slipway/services"
PROBE = (
    "import http.client,json,sys;c=http.client.HTTPConnection(sys.argv[1],80,timeout=5);"
    "c.request('GET',sys.argv[3],headers={'Host':sys.argv[2]});r=c.getresponse();"
    "print(json.dumps({'status':r.status,'body':r.read().decode()}))"
)
RunPlaybook = Callable[..., subprocess.CompletedProcess[str]]
SEEN: dict[str, Any] = {}
VARS: dict[str, Any] = yaml.safe_load((Path(__file__).resolve().parents[1] / "molecule.yml").read_text())[
    "provisioner"]["inventory"]["host_vars"]["slipway-full_stack"]
METRICS = "import sys,urllib.request;print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())"


def deploy(run_playbook: RunPlaybook, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_playbook(PLAYBOOKS / "deploy.yml", "-e", "env=local", *extra, timeout=600)


def state(host: Any, service: str) -> dict[str, Any]:
    return cast("dict[str, Any]", json.loads(host.check_output(f"cat {STATE}/{service}/state.json")))


def history(host: Any, service: str) -> list[dict[str, Any]]:
    out = host.run(f"cat {STATE}/{service}/history.jsonl")
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def through_proxy(host: Any, domain: str, path: str = "/version") -> dict[str, Any]:
    ip = EDGE_ADDRESS
    out: dict[str, Any] = json.loads(host.check_output(f"python3 -c \"{PROBE}\" {ip} {domain} {path}"))
    out["json"] = json.loads(out["body"]) if out["status"] == 200 and path == "/version" else None
    return out


def container(host: Any, name: str) -> dict[str, Any]:
    out = host.run(f"docker inspect {name}")
    return cast("dict[str, Any]", json.loads(out.stdout)[0] if out.rc == 0 else {})


def psql(host: Any, db: str, sql: str) -> str:
    return cast(str, host.check_output(f"docker exec -u postgres postgres psql -X -qtAd {db} -c \"{sql}\"")).strip()


def explain(result: subprocess.CompletedProcess[str], host: Any) -> str:
    logs = host.run("docker ps -a --format '{{.Names}} {{.Status}}'; docker logs --tail 20 edge-proxy 2>&1").stdout
    return f"rc {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}\n---- host ----\n{logs}"


def task_ran(result: subprocess.CompletedProcess[str], name: str) -> bool:
    """Whether the task whose name starts with `name` ran (ok or changed) on a host, not skipped."""
    if name not in result.stdout:
        return False  # display_skipped_hosts = False: a skipped task prints nothing
    after = result.stdout.split(name, 1)[1].split("TASK [", 1)[0]
    return "changed:" in after or "ok:" in after


def test_converge_deployed_v1_of_both_services(host: Any) -> None:
    for service, domain in (("notes-api", "notes.localhost"), ("jotter", "jotter.localhost")):
        st = state(host, service)
        assert st["live"]["version"] == "v1.0.0" and st["live"]["colour"] == "blue", st
        assert st["kept"] is None
        assert [h["result"] for h in history(host, service)] == ["deployed"]
        assert through_proxy(host, domain)["json"]["version"] == "v1.0.0"
    assert psql(host, "notes_api", "SELECT version_num FROM alembic_version") == "0001"
    # Hardening of the running colour.
    hc = container(host, "notes-api-blue")["HostConfig"]
    assert hc["ReadonlyRootfs"] and hc["CapDrop"] == ["ALL"] and "no-new-privileges" in hc["SecurityOpt"]
    assert hc["Memory"] == 256 * 1024 * 1024 and hc["NanoCpus"] == 500_000_000
    assert hc["RestartPolicy"]["Name"] == "unless-stopped"
    # Prometheus scrapes the live colour.
    targets = json.loads(host.check_output("cat /etc/slipway/prometheus/targets/notes-api.json"))
    assert targets[0]["targets"] == ["notes-api-blue:8000"]


def test_exporters_log_in_with_the_least_privilege_logins(host: Any) -> None:
    """The postgresql and redis roles create the monitoring logins; the prometheus role's exporters use them."""
    env = {c: dict(e.split("=", 1) for e in container(host, c)["Config"]["Env"])
           for c in ("postgres-exporter", "redis-exporter")}
    assert env["postgres-exporter"]["DATA_SOURCE_USER"] == "slipway_monitor"
    assert env["redis-exporter"]["REDIS_USER"] == "monitor"
    # The exporters listen on Prometheus' loopback only (its network namespace): read them from there.
    for name, port, up in (("postgres-exporter", 9187, "pg_up 1"), ("redis-exporter", 9121, "redis_up 1")):
        body = host.check_output(
            f"docker run --rm --network container:prometheus --entrypoint python3 slipway/notes-api:v1.0.0 "
            f"-c \"{METRICS}\" http://127.0.0.1:{port}/metrics")
        assert up in body.splitlines(), f"{name}: {up!r} not in its metrics"
    # Nothing the exporter sent was refused by the monitoring user's ACL.
    denied = host.check_output(
        "docker exec redis redis-cli --no-auth-warning --user admin --pass "
        f"{VARS['vault_redis_admin_password']} ACL LOG 100")
    assert "monitor" not in denied.split(), denied


def test_deploy_v2_switches_colours(host: Any, run_playbook: RunPlaybook) -> None:
    result = deploy(run_playbook, "-e", "service=notes-api", "-e", "version=v2.0.0")
    assert result.returncode == 0, explain(result, host)
    st = state(host, "notes-api")
    assert (st["live"]["colour"], st["live"]["version"]) == ("green", "v2.0.0")
    assert (st["kept"]["colour"], st["kept"]["version"]) == ("blue", "v1.0.0")
    assert st["live"]["migration_revision"] == "0002"
    assert through_proxy(host, "notes.localhost")["json"]["version"] == "v2.0.0"
    blue = container(host, "notes-api-blue")
    assert blue and not blue["State"]["Running"] and blue["State"]["ExitCode"] == 0, "old colour kept, stopped"
    SEEN["kept_v1_id"] = blue["Id"]
    last = history(host, "notes-api")[-1]
    assert last["result"] == "deployed" and last["version"] == "v2.0.0" and last["previous_version"] == "v1.0.0"
    assert {"lock", "migrate", "start", "health", "switch", "drain"} <= set(last["durations"])
    # A migration was due, so the Lock call did not start the colour: the host left it for after the migration.
    left = "Switch | The steps left on the host: notes-api (backup, migrate, start, health, switch, drain, record)"
    assert task_ran(result, left), explain(result, host)
    # Docker runs the first HEALTHCHECK one interval (1 s) after the start: the container's own time to healthy.
    assert 1.0 <= last["start_to_healthy"] < 60, last
    targets = json.loads(host.check_output("cat /etc/slipway/prometheus/targets/notes-api.json"))
    assert targets[0]["targets"] == ["notes-api-green:8000"]
    # The pre-migration backup exists.
    assert host.run("ls /var/backups/slipway/postgresql/notes_api/*.dump").rc == 0


def test_v3_with_failing_health_leaves_v2_serving(host: Any, run_playbook: RunPlaybook) -> None:
    before = state(host, "notes-api")
    result = deploy(run_playbook, "-e", "service=notes-api", "-e", "version=v3.0.0-badhealth")
    assert result.returncode != 0, explain(result, host)
    assert "rollout failed in phase health" in result.stdout, explain(result, host)
    assert "FAIL_HEALTH" in result.stdout, "the message shows the container's own words"
    assert state(host, "notes-api")["live"] == before["live"]
    assert through_proxy(host, "notes.localhost")["json"]["version"] == "v2.0.0"
    blue = container(host, "notes-api-blue")
    assert blue["Id"] == SEEN["kept_v1_id"], "the kept v1 container survives a failed rollout"
    last = history(host, "notes-api")[-1]
    assert (last["result"], last["failed_phase"], last["version"]) == ("failed", "health", "v3.0.0-badhealth")
    assert host.run("ls /var/lib/slipway/services/notes-api/logs/*-health.log").rc == 0
    assert not host.file(f"{STATE}/notes-api/lock.json").exists, "the lock is released after a failure"


def test_v4_with_failing_migration_changes_nothing(host: Any, run_playbook: RunPlaybook) -> None:
    columns = psql(host, "notes_api", "SELECT string_agg(column_name, ',' ORDER BY column_name) FROM "
                   "information_schema.columns WHERE table_name = 'notes'")
    result = deploy(run_playbook, "-e", "service=notes-api", "-e", "version=v4.0.0-badmigration")
    assert result.returncode != 0, explain(result, host)
    assert "rollout failed in phase migrate" in result.stdout, explain(result, host)
    assert psql(host, "notes_api", "SELECT version_num FROM alembic_version") == "0002"
    assert psql(host, "notes_api", "SELECT string_agg(column_name, ',' ORDER BY column_name) FROM "
                "information_schema.columns WHERE table_name = 'notes'") == columns
    assert "archived_at" not in columns
    assert through_proxy(host, "notes.localhost")["json"]["version"] == "v2.0.0"
    assert container(host, "notes-api-blue")["Id"] == SEEN["kept_v1_id"], "no container was started"
    last = history(host, "notes-api")[-1]
    assert (last["result"], last["failed_phase"]) == ("failed", "migrate")
    assert "start" not in last["durations"]


def test_rollback_serves_v1_from_its_kept_container(host: Any, run_playbook: RunPlaybook) -> None:
    result = run_playbook(PLAYBOOKS / "rollback.yml", "-e", "env=local", "-e", "service=notes-api")
    assert result.returncode == 0, explain(result, host)
    assert through_proxy(host, "notes.localhost")["json"]["version"] == "v1.0.0"
    blue = container(host, "notes-api-blue")
    assert blue["Id"] == SEEN["kept_v1_id"] and blue["State"]["Running"]
    st = state(host, "notes-api")
    assert (st["live"]["colour"], st["live"]["version"]) == ("blue", "v1.0.0")
    assert (st["kept"]["colour"], st["kept"]["version"]) == ("green", "v2.0.0")
    assert not container(host, "notes-api-green")["State"]["Running"]
    assert history(host, "notes-api")[-1]["result"] == "rolled-back"


def test_redeploying_the_live_version_is_a_noop(host: Any, run_playbook: RunPlaybook) -> None:
    started = container(host, "notes-api-blue")["State"]["StartedAt"]
    lines = len(history(host, "notes-api"))
    result = deploy(run_playbook, "-e", "service=notes-api", "-e", "version=v1.0.0")
    assert result.returncode == 0, explain(result, host)
    assert "changed=0" in result.stdout, explain(result, host)
    assert container(host, "notes-api-blue")["State"]["StartedAt"] == started, "nothing restarted"
    assert len(history(host, "notes-api")) == lines
    assert through_proxy(host, "notes.localhost")["json"]["version"] == "v1.0.0"


def recap(result: subprocess.CompletedProcess[str]) -> tuple[int, int]:
    """(changed, failed) of the host in the play recap."""
    match = re.search(r"slipway-full_stack\s*: ok=\d+\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)", result.stdout)
    assert match, result.stdout[-2000:]
    return int(match.group(1)), int(match.group(2))


def test_check_mode_tells_what_a_deploy_would_do_and_changes_nothing(host: Any, run_playbook: RunPlaybook) -> None:
    """--check runs only the skip-check (`begin --plan`): another version reports changed, the live one changed=0;
    no lock, no container started, no history line, the live release untouched either way."""
    started = container(host, "notes-api-blue")["State"]["StartedAt"]
    lines = len(history(host, "notes-api"))
    pending = deploy(run_playbook, "-e", "service=notes-api", "-e", "version=v2.0.0", "--check", "--diff")
    assert pending.returncode == 0 and recap(pending) == (1, 0), explain(pending, host)
    converged = deploy(run_playbook, "-e", "service=notes-api", "-e", "version=v1.0.0", "--check", "--diff")
    assert converged.returncode == 0 and recap(converged) == (0, 0), explain(converged, host)
    assert container(host, "notes-api-blue")["State"]["StartedAt"] == started, "nothing restarted"
    assert container(host, "notes-api-green")["State"]["Running"] is False, "the idle colour was not started"
    assert len(history(host, "notes-api")) == lines
    assert not host.file(f"{STATE}/notes-api/lock.json").exists
    assert state(host, "notes-api")["live"]["version"] == "v1.0.0"
    assert through_proxy(host, "notes.localhost")["json"]["version"] == "v1.0.0"


def test_deploying_the_kept_release_starts_it_in_the_lock_call(host: Any, run_playbook: RunPlaybook) -> None:
    """Image on the host, no migration due (the kept release's migrations ran here): the Lock call (`begin
    --start-when-ready`) starts the idle colour itself, so the steps it leaves (`todo`) open with the health gate
    while the container boots: two host calls in all. There (v2 on green) and back (v1 on blue) the same way."""
    for version, colour, kept in (("v2.0.0", "green", "v1.0.0"), ("v1.0.0", "blue", "v2.0.0")):
        result = deploy(run_playbook, "-e", "service=notes-api", "-e", f"version={version}")
        assert result.returncode == 0, explain(result, host)
        assert task_ran(result, "Lock | Take the deploy lock"), explain(result, host)
        left = "Switch | The steps left on the host: notes-api (health, switch, drain, record)"
        assert task_ran(result, left), explain(result, host)
        st = state(host, "notes-api")
        assert (st["live"]["colour"], st["live"]["version"], st["kept"]["version"]) == (colour, version, kept)
        last = history(host, "notes-api")[-1]
        assert last["result"] == "deployed" and "migrate" not in last["durations"], last
        assert {"start", "health", "switch", "drain"} <= set(last["durations"]) and last["start_to_healthy"] >= 1.0
        assert through_proxy(host, "notes.localhost")["json"]["version"] == version


def test_status_and_history_playbooks(host: Any, run_playbook: RunPlaybook) -> None:
    result = run_playbook(PLAYBOOKS / "status.yml", "-e", "env=local")
    assert result.returncode == 0, explain(result, host)
    assert '"healthy": true' in result.stdout and '"version": "v1.0.0"' in result.stdout
    result = run_playbook(PLAYBOOKS / "history.yml", "-e", "env=local", "-e", "service=notes-api")
    assert result.returncode == 0, explain(result, host)
    assert "v4.0.0-badmigration failed" in result.stdout and "v1.0.0 rolled-back" in result.stdout


def test_a_concurrent_deploy_is_refused_while_the_first_holds_the_lock(host: Any, run_playbook: RunPlaybook) -> None:
    # The first deploy starts a slow build (5 s before it listens), so its lock is held for a while.
    first: dict[str, subprocess.CompletedProcess[str]] = {}
    thread = threading.Thread(target=lambda: first.update(
        r=deploy(run_playbook, "-e", "service=jotter", "-e", "version=v2.0.0-slow")))
    thread.start()
    deadline = time.monotonic() + 120
    while not host.file(f"{STATE}/jotter/lock.json").exists:
        assert time.monotonic() < deadline and thread.is_alive(), "the first deploy never took the lock"
        time.sleep(0.3)
    second = deploy(run_playbook, "-e", "service=jotter", "-e", "version=v2.0.0")
    thread.join(timeout=600)
    assert second.returncode != 0, explain(second, host)
    assert "refusing a concurrent deploy" in second.stdout and "is being deployed by run" in second.stdout
    assert first["r"].returncode == 0, explain(first["r"], host)
    st = state(host, "jotter")
    assert st["live"]["version"] == "v2.0.0-slow"
    results = [h["result"] for h in history(host, "jotter")]
    assert results == ["deployed", "deployed"], "the refused run wrote no history and changed nothing"
    assert through_proxy(host, "jotter.localhost")["json"]["version"] == "v2.0.0-slow"


def test_a_stale_lock_is_reported_not_ignored(host: Any, run_playbook: RunPlaybook) -> None:
    host.run_expect([0], f"echo '{{\"run_id\": \"killed000001\", \"holder\": \"ci (run killed000001)\", "
                         f"\"since\": \"2026-01-01T00:00:00Z\", \"heartbeat\": 1}}' > {STATE}/jotter/lock.json")
    result = deploy(run_playbook, "-e", "service=jotter", "-e", "version=v1.0.0")
    assert result.returncode != 0, explain(result, host)
    assert "STALE" in result.stdout and "killed000001" in result.stdout, explain(result, host)
    assert host.file(f"{STATE}/jotter/lock.json").exists, "a stale lock is never silently removed"
    assert "slipway unlock --env" in " ".join(result.stdout.split()), explain(result, host)
    # Taking a lock over needs a reason; without one nothing is released.
    force = ("-e", "env=local", "-e", "service=jotter", "-e", "slipway_unlock_force=true")
    result = run_playbook(PLAYBOOKS / "unlock.yml", *force)
    assert result.returncode != 0 and "--reason <why>" in " ".join(result.stdout.split()), explain(result, host)
    assert host.file(f"{STATE}/jotter/lock.json").exists
    reason = json.dumps({"slipway_unlock_reason": "controller killed"})  # blanks need the JSON form of -e
    result = run_playbook(PLAYBOOKS / "unlock.yml", *force, "-e", reason)
    assert result.returncode == 0, explain(result, host)
    assert not host.file(f"{STATE}/jotter/lock.json").exists
    last = history(host, "jotter")[-1]
    assert (last["action"], last["reason"]) == ("unlock", "controller killed"), last


@pytest.mark.parametrize(
    ("bad", "message"),
    [("service=nope", "service 'nope' is not in the services registry"),
     ("version=v1.0.0", "a version ('v1.0.0') was given without a service")],
)
def test_bad_input_is_refused_before_any_host_is_touched(run_playbook: RunPlaybook, bad: str, message: str) -> None:
    result = deploy(run_playbook, "-e", bad)
    assert result.returncode != 0
    assert message in result.stdout
    assert "PLAY [Roll out]" not in result.stdout, "no host was touched"
