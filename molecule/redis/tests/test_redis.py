"""Redis role: behaviour seen by real clients (redis-cli in a client container on the shared network).

Tests run in file order: later ones change the host (new service, image tag change, admin password rotation).
"""

from __future__ import annotations

import hashlib
import json
import shlex
import subprocess
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from scenario_tools import assert_refused_before_any_change, recap_changed, run_playbook, service_entry

SCENARIO = Path(__file__).resolve().parents[1]
# Printed by molecule/conftest.py when a test fails.
DIAGNOSTIC_CONTAINERS = ("redis",)
VARS: dict[str, Any] = yaml.safe_load((SCENARIO / "molecule.yml").read_text())["provisioner"]["inventory"]["host_vars"][
    "slipway-redis"
]
SECRETS = {k: v for k, v in VARS.items() if k.startswith("vault_")}
IMAGE = VARS["redis_image"]
NETWORK = "infra-shared-network"
CLIENT = "redistest-client"
ADMIN = ("admin", SECRETS["vault_redis_admin_password"])
LARK = ("lark-service", SECRETS["vault_lark_service_redis_password"])
HERON = ("heron", SECRETS["vault_heron_redis_password"])
MONITOR = ("monitor", SECRETS["vault_redis_monitoring_password"])


def cli(host: Any, login: tuple[str, str] | None, *args: str) -> str:
    """redis-cli from the client container; returns what the server answered (errors included)."""
    auth = ""
    if login is not None:
        auth = f"-e REDISCLI_AUTH={shlex.quote(login[1])}"
    user = f"--user {shlex.quote(login[0])}" if login is not None else ""
    cmd = f"docker exec {auth} {CLIENT} redis-cli --no-auth-warning -h redis {user} {' '.join(map(shlex.quote, args))}"
    result = host.run(cmd)
    return cast(str, (result.stdout + result.stderr).strip())


def playbook(*args: str, extra_vars: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
    """Run this scenario's converge playbook against the Molecule inventory."""
    return run_playbook(SCENARIO / "converge.yml", *args, extra_vars=extra_vars)


def started_at(host: Any) -> str:
    return cast(str, host.check_output("docker inspect -f '{{.Id}} {{.State.StartedAt}}' redis"))


def state(host: Any) -> tuple[str, str]:
    """What a failed run must not touch: the container and the rendered users."""
    return started_at(host), host.check_output("sha256sum /etc/slipway/redis/users.acl")


@pytest.fixture(scope="module", autouse=True)
def client(host: Any) -> Any:
    host.run(f"docker rm -f {CLIENT}")
    host.check_output(f"docker run -d --name {CLIENT} --network {NETWORK} --entrypoint sleep {IMAGE} infinity")
    yield CLIENT
    host.run(f"docker rm -f {CLIENT}")


def test_server_runs_on_the_shared_network_only(host: Any) -> None:
    info = json.loads(host.check_output("docker inspect redis"))[0]
    assert info["State"]["Running"]
    assert list(info["NetworkSettings"]["Networks"]) == [NETWORK]
    assert not info["HostConfig"]["PortBindings"], "nothing may be published on the host"
    assert any(m["Type"] == "volume" and m["Destination"] == "/data" for m in info["Mounts"])


def test_persistence_and_memory_come_from_the_variables(host: Any) -> None:
    assert cli(host, ADMIN, "CONFIG", "GET", "appendonly").split() == ["appendonly", "yes"]
    assert cli(host, ADMIN, "CONFIG", "GET", "maxmemory").split() == ["maxmemory", str(64 * 1024 * 1024)]
    assert cli(host, ADMIN, "CONFIG", "GET", "maxmemory-policy").split() == ["maxmemory-policy", "volatile-lru"]


def test_service_user_reads_and_writes_its_own_keys(host: Any) -> None:
    assert cli(host, LARK, "SET", "lark-service:greeting", "hello") == "OK"
    assert cli(host, LARK, "GET", "lark-service:greeting") == "hello"
    assert cli(host, HERON, "SET", "heron:greeting", "hi") == "OK"


@pytest.mark.parametrize(
    "command",
    [
        ("GET", "heron:greeting"),
        ("SET", "heron:greeting", "overwritten"),
        ("SET", "unprefixed", "x"),
        ("FLUSHALL",),
        ("FLUSHDB",),
        ("CONFIG", "GET", "*"),
        ("KEYS", "*"),
        ("DEBUG", "SLEEP", "0"),
        ("SCAN", "0"),
        ("SHUTDOWN",),
    ],
)
def test_service_user_is_refused_outside_its_keys_and_dangerous_commands(host: Any, command: tuple[str, ...]) -> None:
    answer = cli(host, LARK, *command)
    # Redis 7 also refuses DEBUG to everyone unless enable-debug-command is set; the ACL is checked below.
    assert answer.startswith("NOPERM") or answer.startswith("ERR DEBUG command not allowed"), answer
    # The ACL itself denies it (ACL DRYRUN asks the ACL without running the command).
    verdict = cli(host, ADMIN, "ACL", "DRYRUN", LARK[0], *command)
    assert verdict != "OK" and "no permissions" in verdict, verdict
    assert cli(host, HERON, "GET", "heron:greeting") == "hi"


def test_the_monitoring_user_runs_the_exporters_commands_and_reads_no_key(host: Any) -> None:
    assert cli(host, MONITOR, "PING") == "PONG"
    assert "redis_version" in cli(host, MONITOR, "INFO", "server")
    assert "maxmemory" in cli(host, MONITOR, "CONFIG", "GET", "maxmemory")
    assert not cli(host, MONITOR, "SLOWLOG", "LEN").startswith("NOPERM")
    for command in (("GET", "lark-service:greeting"), ("SET", "x", "1"), ("KEYS", "*"), ("SCAN", "0"),
                    ("CONFIG", "SET", "maxmemory", "1"), ("CLIENT", "LIST"), ("FLUSHALL",), ("MONITOR",)):
        verdict = cli(host, ADMIN, "ACL", "DRYRUN", MONITOR[0], *command)
        assert verdict != "OK" and "no permissions" in verdict, (command, verdict)
    assert cli(host, MONITOR, "GET", "lark-service:greeting").startswith("NOPERM")


def test_unauthenticated_and_wrong_password_are_refused(host: Any) -> None:
    assert cli(host, None, "PING").startswith("NOAUTH"), "the default user must be off"
    assert cli(host, None, "GET", "lark-service:greeting").startswith("NOAUTH")
    for login in [("default", "anything"), (LARK[0], "not-the-password"), (LARK[0], HERON[1])]:
        answer = cli(host, login, "PING")
        assert "WRONGPASS" in answer and "PONG" not in answer, (login[0], answer)


def test_check_diff_on_converged_host_changes_nothing_and_prints_no_secret() -> None:
    run = playbook("--check", "--diff")
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert recap_changed(output, "slipway-redis") == 0, output[-3000:]
    leaked = [
        name
        for name, value in SECRETS.items()
        if value in output or hashlib.sha256(value.encode()).hexdigest() in output
    ]
    assert not leaked, f"secrets or their hashes printed: {leaked}"


def test_new_service_user_is_applied_without_a_restart(host: Any) -> None:
    before = started_at(host)
    osprey = ("osprey", "test-osprey-redis-pw-5e11")
    run = playbook(
        extra_vars={
            "slipway_services": {
                **VARS["slipway_services"],
                "osprey": service_entry("r.example.com/osprey", "osprey.test", "redis"),
            },
            "vault_osprey_redis_password": osprey[1],
        }
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert started_at(host) == before, "an ACL change must not restart Redis"
    assert cli(host, osprey, "SET", "osprey:k", "v") == "OK"
    assert cli(host, osprey, "GET", "lark-service:greeting").startswith("NOPERM")
    assert cli(host, LARK, "GET", "lark-service:greeting") == "hello"


def test_image_tag_change_keeps_data_and_rotates_the_admin_password(host: Any) -> None:
    assert cli(host, LARK, "SET", "lark-service:before-recreate", "kept") == "OK"
    old = started_at(host)
    host.check_output(f"docker tag {IMAGE} {IMAGE}-next")
    rotated = "test-redis-admin-rotated-pw-77b0"
    run = playbook(
        extra_vars={
            "redis_image": f"{IMAGE}-next",
            "vault_redis_admin_password": rotated,
            "redis_maxmemory_policy": "allkeys-lru",
        }
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert rotated not in output
    info = json.loads(host.check_output("docker inspect redis"))[0]
    assert info["Config"]["Image"] == f"{IMAGE}-next"
    assert started_at(host).split()[0] != old.split()[0], "the container should have been recreated"
    assert cli(host, LARK, "GET", "lark-service:before-recreate") == "kept"
    assert cli(host, LARK, "GET", "lark-service:greeting") == "hello"
    assert cli(host, HERON, "GET", "heron:greeting") == "hi"
    assert cli(host, ("admin", rotated), "CONFIG", "GET", "maxmemory-policy").split() == [
        "maxmemory-policy",
        "allkeys-lru",
    ]
    old_admin = cli(host, ADMIN, "PING")
    assert "WRONGPASS" in old_admin and "PONG" not in old_admin


def test_restart_keeps_data(host: Any) -> None:
    assert cli(host, LARK, "SET", "lark-service:before-restart", "kept") == "OK"
    host.check_output("docker restart redis")
    for _ in range(30):
        if cli(host, LARK, "GET", "lark-service:before-restart") == "kept":
            break
        host.run("sleep 1")
    assert cli(host, LARK, "GET", "lark-service:before-restart") == "kept"


def test_invalid_service_name_fails_before_any_change(host: Any) -> None:
    before = state(host)
    run = playbook(
        extra_vars={
            "slipway_services": {
                **VARS["slipway_services"],
                "Bad_Name": service_entry("r.example.com/x", "bad.test", "redis"),
            }
        }
    )
    assert_refused_before_any_change(run, "slipway-redis", "service 'Bad_Name' is not a service name")
    assert state(host) == before


def test_missing_password_variable_fails_before_any_change(host: Any) -> None:
    before = state(host)
    run = playbook(
        extra_vars={
            "slipway_services": {
                **VARS["slipway_services"],
                "wren": service_entry("r.example.com/wren", "wren.test", "redis"),
            }
        }
    )
    assert_refused_before_any_change(
        run, "slipway-redis", "service wren", "vault_wren_redis_password is not defined"
    )
    assert state(host) == before
