"""Redis role: behaviour seen by real clients (redis-cli in a client container on the shared network).

Tests run in file order: later ones change the host (new service, image tag change, admin password rotation).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from scenario_tools import assert_refused_before_any_change, recap_changed, run_playbook, service_entry, wait_for

# The one-host mode's host (tests/test_redis_managed.py is about the other one).
HOST = "slipway-redis"
testinfra_hosts = [f"ansible://{HOST}"]
SCENARIO = Path(__file__).resolve().parents[1]
ROLE = SCENARIO.parents[1] / "roles" / "redis"
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
# The role's intent, read from the role itself: the commands it takes from services, the keyless ones it leaves them
# (with their reasons, roles/redis/vars/main.yml), and the container limits.
DEFAULTS: dict[str, Any] = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
DENIED: list[str] = DEFAULTS["redis_service_denied_commands"]
KEYLESS_ALLOWED: list[str] = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["_redis_service_keyless_commands"]
CONFIG_DIR = "/etc/slipway/redis"
REDIS_UID = 999


def cli(host: Any, login: tuple[str, str] | None, *args: str) -> str:
    """redis-cli from the client container; returns what the server answered (errors included)."""
    auth = ""
    if login is not None:
        auth = f"-e REDISCLI_AUTH={shlex.quote(login[1])}"
    user = f"--user {shlex.quote(login[0])}" if login is not None else ""
    cmd = f"docker exec {auth} {CLIENT} redis-cli --no-auth-warning -h redis {user} {' '.join(map(shlex.quote, args))}"
    result = host.run(cmd)
    return cast(str, (result.stdout + result.stderr).strip())


def _redis_arg(arg: str) -> str:
    """One argument as redis-cli's line reader parses it (plain, or double-quoted with escapes)."""
    return arg if re.fullmatch(r"[\w:|.*-]+", arg) else json.dumps(arg)


def cli_lines(host: Any, login: tuple[str, str], commands: list[tuple[str, ...]], *options: str) -> list[str]:
    """Several commands on one connection (redis-cli reads them from stdin): one answer line per command with
    `--json`, which every caller here passes. No (UN)SUBSCRIBE: its reply puts redis-cli into a subscriber's loop."""
    text = "".join(" ".join(map(_redis_arg, command)) + "\n" for command in commands)
    cmd = (
        f"printf %s {shlex.quote(text)} | docker exec -i -e REDISCLI_AUTH={shlex.quote(login[1])} {CLIENT} "
        f"timeout 120 redis-cli --no-auth-warning -h redis --user {shlex.quote(login[0])} {' '.join(options)}"
    )
    result = host.run(cmd)
    assert result.rc == 0, result.stdout + result.stderr
    return cast(str, result.stdout).splitlines()


@dataclass(frozen=True)
class ServerCommand:
    """One command or subcommand as the server describes it (COMMAND): `get`, `client|tracking`."""

    name: str
    arity: int
    key_specs: tuple[frozenset[str], ...]

    @property
    def takes_keys(self) -> bool:
        """Some argument is a key (a key spec not flagged NOT_KEY: SPUBLISH's channel has one for routing)."""
        return any("not_key" not in flags for flags in self.key_specs)

    def argv(self, filler: str) -> tuple[str, ...]:
        """The shortest call its arity allows, every other argument `filler`."""
        words = tuple(self.name.split("|"))
        return words + (filler,) * max(0, abs(self.arity) - len(words))


def server_commands(host: Any) -> list[ServerCommand]:
    """Every command and subcommand the server knows (COMMAND as admin); a container such as CLIENT counts only
    when it runs without a subcommand (COMMAND does)."""
    found: list[ServerCommand] = []

    def walk(entry: list[Any]) -> None:
        name, arity, specs, subcommands = entry[0], entry[1], entry[8], entry[9]
        if not subcommands or abs(arity) <= 1:
            flags = tuple(frozenset(str(flag).lower() for flag in spec["flags"]) for spec in specs)
            found.append(ServerCommand(str(name).lower(), int(arity), flags))
        for sub in subcommands:
            walk(sub)

    for entry in json.loads(cli_lines(host, ADMIN, [("COMMAND",)], "--json")[0]):
        walk(entry)
    assert len(found) > 200, found
    return found


def dryrun(host: Any, user: str, calls: list[tuple[str, ...]]) -> list[bool]:
    """ACL DRYRUN for each call (the ACL's verdict, nothing runs): True = permitted. Any answer other than OK or a
    permission refusal fails, so a call that could not be judged never passes for denied."""
    answers = cli_lines(host, ADMIN, [("ACL", "DRYRUN", user, *call) for call in calls], "--json")
    assert len(answers) == len(calls), answers[-5:]
    verdicts = []
    for call, raw in zip(calls, answers, strict=True):
        answer = raw.removeprefix("error:")
        assert answer == '"OK"' or "no permissions" in answer, (call, answer)
        verdicts.append(answer == '"OK"')
    return verdicts


def playbook(*args: str, extra_vars: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
    """Run this scenario's converge playbook against the Molecule inventory, on this file's host only."""
    return run_playbook(SCENARIO / "converge.yml", "--limit", HOST, *args, extra_vars=extra_vars)


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


def test_every_keyless_command_a_service_may_run_is_on_the_allowlist(host: Any) -> None:
    """The class behind the audit: a service command either acts on the service's own keys/channels (the ACL checks
    them) or is a decided keyless command (roles/redis/vars/main.yml). Asked of the server itself, so a keyless
    command a new Redis version brings fails here until someone decides."""
    commands = server_commands(host)
    own = dryrun(host, LARK[0], [c.argv("lark-service:probe") for c in commands])
    foreign = dryrun(host, LARK[0], [c.argv("heron:probe") for c in commands])
    undecided = sorted(
        c.name
        for c, permitted, on_foreign in zip(commands, own, foreign, strict=True)
        # Checked: keys by their key specs; channels when a foreign channel is refused where its own is not.
        if permitted and not c.takes_keys and on_foreign and c.name not in KEYLESS_ALLOWED
    )
    assert not undecided, f"keyless commands a service may run that are on no list: {undecided}"


def test_the_role_lists_agree_with_the_server(host: Any) -> None:
    """Every allowlisted keyless command still works for a service (apps keep what they were promised); every
    denied one, with all its subcommands, is refused."""
    commands = {c.name: c for c in server_commands(host)}
    allowed = [commands[name] for name in KEYLESS_ALLOWED if name in commands]
    assert len(allowed) > 30, "the allowlist names commands this server does not know"
    verdicts = dryrun(host, LARK[0], [c.argv("x") for c in allowed])
    refused = [c.name for c, ok in zip(allowed, verdicts, strict=True) if not ok]
    assert not refused, f"allowlisted but refused: {refused}"
    denied = [c for c in commands.values() if c.name in DENIED or c.name.split("|")[0] in DENIED]
    assert {c.name.split("|")[0] for c in denied} >= {d.split("|")[0] for d in DENIED}, "unknown denied names"
    verdicts = dryrun(host, HERON[0], [c.argv("heron:x") for c in denied])
    let_through = [c.name for c, ok in zip(denied, verdicts, strict=True) if ok]
    assert not let_through, f"denied but permitted: {let_through}"


# The audit's reproductions, run by service B (heron) against what service A (lark-service) has on the server.
@pytest.mark.parametrize(
    "command",
    [
        ("FUNCTION", "LIST", "WITHCODE"),
        ("FUNCTION", "LOAD", "REPLACE", "#!lua name=larklib\nredis.register_function('lark_hello', function() end)"),
        ("FUNCTION", "FLUSH"),
        ("FUNCTION", "DELETE", "larklib"),
        ("FCALL", "lark_hello", "0"),
        ("SCRIPT", "FLUSH"),
        ("SCRIPT", "KILL"),
        ("CLIENT", "TRACKING", "on", "BCAST"),
        ("CLIENT", "TRACKING", "on"),
        ("CLIENT", "TRACKINGINFO"),
        ("PUBSUB", "CHANNELS"),
        ("PUBSUB", "NUMSUB", "lark-service:events"),
        ("PUBSUB", "NUMPAT"),
        ("DBSIZE",),
        ("MEMORY", "STATS"),
        ("MEMORY", "DOCTOR"),
        ("CLUSTER", "COUNTKEYSINSLOT", "0"),
    ],
    ids=lambda command: " ".join(word for word in command if re.fullmatch(r"[\w:-]+", word)),
)
def test_another_service_cannot_see_or_change_what_a_service_has(host: Any, command: tuple[str, ...]) -> None:
    library = "#!lua name=larklib\nredis.register_function('lark_hello', function() return 'A' end)"
    assert cli(host, ADMIN, "FUNCTION", "LOAD", "REPLACE", library) == "larklib"
    try:
        answer = cli(host, HERON, *command)
        assert answer.startswith("NOPERM"), answer
        assert "register_function" not in answer
        verdict = cli(host, ADMIN, "ACL", "DRYRUN", HERON[0], *command)
        assert "no permissions" in verdict, verdict
        # What A relies on is still there.
        assert cli(host, ADMIN, "FCALL", "lark_hello", "0") == "A"
    finally:
        cli(host, ADMIN, "FUNCTION", "DELETE", "larklib")


def test_a_service_keeps_its_scripts_and_no_other_service_can_drop_them(host: Any) -> None:
    body = "return redis.call('GET', KEYS[1])"
    sha = cli(host, LARK, "SCRIPT", "LOAD", body)
    assert re.fullmatch(r"[0-9a-f]{40}", sha), sha
    assert cli(host, LARK, "SCRIPT", "EXISTS", sha) == "1"
    assert cli(host, LARK, "EVALSHA", sha, "1", "lark-service:greeting") == "hello"
    assert cli(host, HERON, "SCRIPT", "FLUSH").startswith("NOPERM")
    assert cli(host, LARK, "EVALSHA", sha, "1", "lark-service:greeting") == "hello"
    assert cli(host, LARK, "EVAL", body, "1", "lark-service:greeting") == "hello"
    assert cli(host, LARK, "EVAL_RO", body, "1", "lark-service:greeting") == "hello"
    # A script is held to its caller's ACL, declared keys or not.
    for script, keys in [(body, ["1", "heron:greeting"]), ("return redis.call('GET', 'heron:greeting')", ["0"]),
                         ("return redis.call('DBSIZE')", ["0"])]:
        answer = cli(host, LARK, "EVAL", script, *keys)
        assert re.search(r"no permissions|can't access|can't run", answer), (script, answer)


def test_a_service_publishes_and_subscribes_on_its_own_channels(host: Any) -> None:
    host.run(f"docker exec {CLIENT} rm -f /tmp/sub.out")
    host.check_output(
        f"docker exec -d -e REDISCLI_AUTH={shlex.quote(LARK[1])} {CLIENT} sh -c "
        + shlex.quote(
            f"timeout 30 stdbuf -oL redis-cli --no-auth-warning -h redis --user {LARK[0]} "
            "SUBSCRIBE lark-service:events > /tmp/sub.out 2>&1"
        )
    )
    for _ in range(50):
        if cli(host, ADMIN, "PUBSUB", "NUMSUB", "lark-service:events").split()[-1:] == ["1"]:
            break
        host.run("sleep 0.2")
    assert cli(host, LARK, "PUBLISH", "lark-service:events", "hello-from-a") == "1"
    for _ in range(50):
        received = host.run(f"docker exec {CLIENT} cat /tmp/sub.out").stdout
        if "hello-from-a" in received:
            break
        host.run("sleep 0.2")
    assert "hello-from-a" in received, received
    assert cli(host, HERON, "PUBLISH", "lark-service:events", "spoofed").startswith("NOPERM")
    verdicts = dryrun(
        host,
        LARK[0],
        [("PSUBSCRIBE", "lark-service:*"), ("PSUBSCRIBE", "heron:*"), ("SUBSCRIBE", "heron:events"),
         ("SSUBSCRIBE", "lark-service:s"), ("SPUBLISH", "heron:s", "m")],
    )
    assert verdicts == [True, False, False, True, False]


def test_a_service_keeps_transactions_and_its_connection_commands(host: Any) -> None:
    answers = cli_lines(
        host,
        LARK,
        [("CLIENT", "SETNAME", "lark-worker"), ("CLIENT", "GETNAME"), ("ACL", "WHOAMI"), ("SELECT", "0"),
         ("MULTI",), ("SET", "lark-service:tx", "1"), ("INCR", "lark-service:tx"), ("EXEC",),
         ("ECHO", "e"), ("WAIT", "0", "0")],
        "--json",
    )
    assert answers[:8] == ['"OK"', '"lark-worker"', '"lark-service"', '"OK"', '"OK"', '"QUEUED"', '"QUEUED"',
                           '["OK",2]'], answers
    assert answers[8:10] == ['"e"', "0"], answers


def test_the_configuration_directory_s_parent_stays_root_s(host: Any) -> None:
    """The role ran first on this host: had it let Ansible create /etc/slipway along with its own directory, the
    parent would be the container's (999, 0700), and uid 999 could rename every other role's directory in it."""
    assert host.check_output("stat -c '%u %g %a' /etc/slipway") == "0 0 755"


def test_the_acl_file_is_readable_by_the_containers_user_only(host: Any) -> None:
    """users.acl holds an unsalted SHA-256 of every password: owner = the container's uid, group root, 0600, in a
    directory no one else may enter."""
    acl = host.file(f"{CONFIG_DIR}/users.acl")
    assert (acl.uid, acl.gid, acl.mode) == (REDIS_UID, 0, 0o600), (acl.uid, acl.gid, oct(acl.mode))
    directory = host.file(CONFIG_DIR)
    assert (directory.uid, directory.gid, directory.mode) == (REDIS_UID, 0, 0o700), oct(directory.mode)
    conf = host.file(f"{CONFIG_DIR}/redis.conf")
    assert conf.mode & 0o077 == 0 or "requirepass" not in conf.content_string


@pytest.mark.parametrize(("uid", "gid"), [(65534, 999), (1000, 0), (65534, 65534)])
def test_other_host_users_cannot_read_the_password_hashes(host: Any, uid: int, gid: int) -> None:
    # gid 999 is systemd-journal on a Debian host (the file's old group); 0 is root's group.
    other = host.run(f"setpriv --reuid {uid} --regid {gid} --clear-groups cat {CONFIG_DIR}/users.acl")
    assert other.rc != 0 and "Permission denied" in other.stderr, other.stdout[:80]
    server = host.run(f"setpriv --reuid {REDIS_UID} --regid {REDIS_UID} --clear-groups cat {CONFIG_DIR}/users.acl")
    assert server.rc == 0 and "user default off" in server.stdout, server.stderr


def test_the_container_is_hardened(host: Any) -> None:
    info = json.loads(host.check_output("docker inspect redis"))[0]
    config = info["HostConfig"]
    assert info["Config"]["User"] == f"{REDIS_UID}:{REDIS_UID}"
    assert config["CapDrop"] == ["ALL"] and not config["CapAdd"], (config["CapDrop"], config["CapAdd"])
    assert config["ReadonlyRootfs"] is True
    assert config["SecurityOpt"] == ["no-new-privileges"], config["SecurityOpt"]
    assert config["PidsLimit"] == DEFAULTS["redis_container_pids_limit"]
    assert config["NanoCpus"] == int(DEFAULTS["redis_container_cpus"] * 1e9)
    assert config["Memory"] > 0
    assert not config["Privileged"]
    # The server process itself: the redis uid, no capability at all, no way to gain privileges.
    status = host.check_output("docker exec redis cat /proc/1/status")
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    assert fields["Uid"].split()[:2] == [str(REDIS_UID)] * 2, fields["Uid"]
    assert int(fields["CapEff"], 16) == 0 and int(fields["CapBnd"], 16) == 0, (fields["CapEff"], fields["CapBnd"])
    assert fields["NoNewPrivs"].strip() == "1"
    assert host.run("docker exec redis touch /probe").rc != 0, "the root file system must be read-only"


def test_the_hardened_server_still_persists(host: Any) -> None:
    """Read-only root, no capabilities, a pids limit: the forked snapshot and append-only rewrite still work."""
    assert cli(host, LARK, "SET", "lark-service:persisted", "yes") == "OK"
    before = cli(host, ADMIN, "LASTSAVE")
    assert "started" in cli(host, ADMIN, "BGSAVE")
    for _ in range(50):
        if cli(host, ADMIN, "LASTSAVE") != before:
            break
        host.run("sleep 0.2")
    assert "started" in cli(host, ADMIN, "BGREWRITEAOF") or "scheduled" in cli(host, ADMIN, "BGREWRITEAOF")
    for _ in range(50):
        persistence = cli(host, ADMIN, "INFO", "persistence")
        if "aof_rewrite_in_progress:0" in persistence and "aof_rewrite_scheduled:0" in persistence:
            break
        host.run("sleep 0.2")
    assert "rdb_last_bgsave_status:ok" in persistence, persistence
    assert "aof_last_bgrewrite_status:ok" in persistence, persistence


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


# Redis's own (hidden) settings that make a load slow and answered: a delay after each key it loads (microseconds),
# and clients served every KB loaded (LOADING at once, not a connection held until the load ends).
SLOW_LOAD = {"key-load-delay": 5000, "loading-process-events-interval-bytes": 1024}
LOAD_KEYS = 4000  # 4000 keys x 5 ms: a load of 20 s or more, longer than the role's old 5 retries of the admin's PING


def test_a_restart_that_loads_a_large_data_set_is_waited_for(host: Any) -> None:
    """A restart with a large append-only file: the server answers a logged-in client LOADING until the data set is
    in memory (the unauthenticated PING passes at once: NOAUTH comes first). The role waits for the load; before
    roles/redis/tasks/container.yml's wait it failed the run after 5 tries of the admin's PING."""
    def each_key(call: str) -> str:
        return f"for i=1,{LOAD_KEYS} do redis.call({call}) end return {LOAD_KEYS}"

    assert cli(host, LARK, "SET", "lark-service:before-slow-load", "kept") == "OK"
    assert cli(host, LARK, "EVAL", each_key("'SET', 'lark-service:load:'..i, 'x'"), "0") == str(LOAD_KEYS)
    # Into the append-only file's base (an RDB: the per-key delay applies to it), as a restart loads it.
    assert "rewriting started" in cli(host, ADMIN, "BGREWRITEAOF")
    wait_for(lambda: {"aof_rewrite_in_progress:0", "aof_rewrite_scheduled:0"}
             <= set(cli(host, ADMIN, "INFO", "persistence").split()), 60, "the rewrite ended")
    since = host.check_output("date +%s")
    try:
        run = playbook(extra_vars={"redis_extra_config": SLOW_LOAD})
        output = run.stdout + run.stderr
        assert run.returncode == 0, output[-3000:]
        logs = host.run(f"docker logs --since {since} redis").stdout
        loaded = re.findall(r"DB loaded from append only file: ([0-9.]+) seconds", logs)
        assert loaded and float(loaded[-1]) >= 10, logs[-2000:]
        assert cli(host, LARK, "GET", f"lark-service:load:{LOAD_KEYS}") == "x"
    finally:
        cli(host, LARK, "EVAL", each_key("'DEL', 'lark-service:load:'..i"), "0")
        back = playbook()
        assert back.returncode == 0, (back.stdout + back.stderr)[-3000:]
    assert cli(host, LARK, "GET", "lark-service:before-slow-load") == "kept"


def test_app_hosts_on_other_vms_reach_redis_on_the_private_address_only(host: Any, tmp_path: Path) -> None:
    """This host as the data host of an environment whose app host is another VM (docs/topology.md): Redis is
    published on the host's private address (here its address on the machine's Docker network) and nowhere else,
    and a client from outside the host logs in with its ACL user as before. The app host is only named in the
    inventory (nothing runs on it); the next test's converge, without `env`, takes the publication away again."""
    address = subprocess.run(
        ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", "slipway-redis"],
        capture_output=True, text=True, check=True).stdout.split()[0]
    inventory = tmp_path / "rtest.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"rtest": {"children": {
        "rtest_data": {"hosts": {"slipway-redis": {"slipway_private_address": address}}},
        "rtest_edge": {"hosts": {"slipway-redis": None}},
        "rtest_monitoring": {"hosts": {"slipway-redis": None}},
        "rtest_app": {"hosts": {"rtest-app-1": {"slipway_private_address": "10.241.8.11"}}},
    }}}}}))
    run = playbook("-i", str(inventory), "--limit", "slipway-redis", extra_vars={"env": "rtest"})
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    bindings = json.loads(host.check_output("docker inspect redis"))[0]["HostConfig"]["PortBindings"]
    assert bindings == {"6379/tcp": [{"HostIp": address, "HostPort": "6379"}]}, bindings
    # From another container of the machine's network, to that address: the ACL users as on the shared network.
    def remote(login: tuple[str, str], *args: str) -> str:
        probe = subprocess.run(
            ["docker", "run", "--rm", "-e", "REDISCLI_AUTH", "--entrypoint", "redis-cli", IMAGE, "--no-auth-warning",
             "-h", address, "--user", login[0], *args],
            capture_output=True, text=True, timeout=60, check=False, env={**os.environ, "REDISCLI_AUTH": login[1]})
        return (probe.stdout + probe.stderr).strip()

    assert remote(LARK, "GET", "lark-service:greeting") == "hello"
    assert remote(LARK, "GET", "heron:greeting").startswith("NOPERM")
    assert "WRONGPASS" in remote((LARK[0], "not-the-password"), "PING")


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


def test_a_volume_written_by_the_root_started_image_stays_usable(host: Any) -> None:
    """Hosts deployed before the server ran as 999:999: the image started as root and made /data's files the redis
    user's. The role's container, started as that user, keeps using them (runs last: it moves the server there)."""
    legacy = "redistest-legacy"
    host.run(f"docker rm -f {legacy}; docker volume rm -f {legacy}")
    host.check_output(f"docker run -d --name {legacy} -v {legacy}:/data {IMAGE} redis-server --appendonly yes")
    for _ in range(50):
        if host.run(f"docker exec {legacy} redis-cli ping").stdout.strip() == "PONG":
            break
        host.run("sleep 0.2")
    assert host.check_output(f"docker exec {legacy} redis-cli SET lark-service:legacy kept") == "OK"
    host.check_output(f"docker stop {legacy} && docker rm {legacy}")
    try:
        run = playbook(extra_vars={"redis_volume": legacy})
        output = run.stdout + run.stderr
        assert run.returncode == 0, output[-3000:]
        assert cli(host, LARK, "GET", "lark-service:legacy") == "kept"
        assert cli(host, LARK, "SET", "lark-service:after-upgrade", "written") == "OK"
        assert "started" in cli(host, ADMIN, "BGREWRITEAOF")
    finally:
        # Back on the scenario's own volume, so the tests can run again on this host.
        restore = playbook()
        assert restore.returncode == 0, (restore.stdout + restore.stderr)[-3000:]
        host.run(f"docker volume rm {legacy}")
