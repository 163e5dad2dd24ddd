"""Redis role, managed mode (redis_managed, accounts: acl): the users made over the network on a Redis the role does
not run (prepare.yml's managed-redis, whose admin login may only manage users), with exactly the one-host mode's
rights. Clients are redis-cli in the managed server's own container (it reaches itself on loopback)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any, cast

import yaml
from scenario_tools import assert_refused_before_any_change, inventory_path, run_playbook

HOST = "slipway-redis-managed"
ONE_HOST = "slipway-redis"
testinfra_hosts = [f"ansible://{HOST}"]
SCENARIO = Path(__file__).resolve().parents[1]
DIAGNOSTIC_CONTAINERS = ("managed-redis",)
VARS: dict[str, Any] = yaml.safe_load((SCENARIO / "molecule.yml").read_text())["provisioner"]["inventory"]["host_vars"][
    HOST
]
SECRETS = {k: v for k, v in VARS.items() if k.startswith("vault_")}
ADMIN = ("slipway_admin", SECRETS["vault_redis_managed_admin_password"])
LARK = ("lark-service", SECRETS["vault_lark_service_redis_password"])
HERON = ("heron", SECRETS["vault_heron_redis_password"])
MONITOR = ("monitor", SECRETS["vault_redis_monitoring_password"])


def cli(host: Any, login: tuple[str, str], *args: str, container: str = "managed-redis") -> str:
    """redis-cli as `login` in `container` (the password through the environment, never the command line)."""
    cmd = (f"docker exec -e REDISCLI_AUTH={shlex.quote(login[1])} {container} redis-cli --no-auth-warning "
           f"--user {shlex.quote(login[0])} {' '.join(map(shlex.quote, args))}")
    result = host.run(cmd)
    return cast(str, (result.stdout + result.stderr).strip())


def rules(line: str) -> frozenset[str]:
    """An ACL LIST line's rules without its password hashes: the rights alone. A set: two servers may list the same
    command rules in another order (the one-host server read them from its file, the managed one got ACL SETUSER)."""
    return frozenset(re.sub(r" #[0-9a-f]{64}", "", line).split())


def acl_lines(host: Any, login: tuple[str, str], container: str) -> dict[str, frozenset[str]]:
    found = {}
    for line in cli(host, login, "ACL", "LIST", container=container).splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0] == "user":
            found[parts[1]] = rules(parts[2])
    return found


def test_the_role_runs_no_server_and_writes_no_files_here(host: Any) -> None:
    names = host.check_output("docker ps -a --format '{{.Names}}'").split()
    assert names == ["managed-redis"]
    assert not host.file("/etc/slipway/redis").exists


def test_each_service_reaches_its_own_keys_only(host: Any) -> None:
    assert cli(host, LARK, "SET", "lark-service:greeting", "hi") == "OK"
    assert cli(host, LARK, "GET", "lark-service:greeting") == "hi"
    assert "NOPERM" in cli(host, LARK, "GET", "heron:anything")
    assert "NOPERM" in cli(host, HERON, "GET", "lark-service:greeting")
    assert "NOPERM" in cli(host, LARK, "FLUSHALL")
    assert "NOPERM" in cli(host, LARK, "SCAN", "0")


def test_the_admin_manages_users_and_reads_no_data(host: Any) -> None:
    assert "NOPERM" in cli(host, ADMIN, "GET", "lark-service:greeting")
    assert "NOPERM" in cli(host, ADMIN, "KEYS", "*")


def test_the_monitoring_user_reads_statistics_and_no_keys(host: Any) -> None:
    assert "redis_version" in cli(host, MONITOR, "INFO", "server")
    assert "NOPERM" in cli(host, MONITOR, "GET", "lark-service:greeting")


def test_the_users_have_exactly_the_one_host_modes_rights(host: Any) -> None:
    one_host = host.get_host(f"ansible://{ONE_HOST}", ansible_inventory=inventory_path())
    one_vars = yaml.safe_load((SCENARIO / "molecule.yml").read_text())["provisioner"]["inventory"]["host_vars"][
        ONE_HOST]
    managed = acl_lines(host, ADMIN, "managed-redis")
    there = acl_lines(one_host, ("admin", one_vars["vault_redis_admin_password"]), "redis")
    for user in ("lark-service", "heron", "monitor"):
        assert managed[user] == there[user], user
    assert not [name for name in managed if name.startswith("slipway-probe")]


def test_the_users_outlive_a_restart_of_the_managed_server(host: Any) -> None:
    host.check_output("docker restart managed-redis")  # the test server keeps no data, only its ACL file
    for _ in range(30):
        if "NOAUTH" in host.run("docker exec managed-redis redis-cli ping").stdout:
            break
        host.run("sleep 1")
    assert cli(host, LARK, "SET", "lark-service:again", "1") == "OK"
    assert "NOPERM" in cli(host, LARK, "GET", "heron:anything")
    assert cli(host, MONITOR, "PING") == "PONG"


def test_a_managed_setting_without_its_admin_is_refused_before_any_change(host: Any) -> None:
    before = host.check_output("docker exec managed-redis cat /etc/managed-redis/users.acl")
    run = run_playbook(SCENARIO / "converge.yml", "--limit", HOST,
                       extra_vars={"redis_managed": {"host": VARS["redis_managed"]["host"], "accounts": "acl"},
                                   "slipway_services": {**VARS["slipway_services"], "wren": {
                                       "image": "r.example.com/wren", "version": "v1", "port": 80,
                                       "domain": "wren.test", "redis": True}},
                                   "vault_wren_redis_password": "test-wren-pw-0c1f"})  # pragma: allowlist secret
    assert_refused_before_any_change(run, HOST, "redis_managed needs host", "admin_user (none)")
    assert host.check_output("docker exec managed-redis cat /etc/managed-redis/users.acl") == before
    assert "wren" not in acl_lines(host, ADMIN, "managed-redis")
