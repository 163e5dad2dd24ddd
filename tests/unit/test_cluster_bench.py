"""bench/cluster_bench.py without Docker: the inventory variants it writes (Docker connection, one VM, a host that
fails its health gate), how the app hosts' history lines of one rollout become one row, and the summary's ratios."""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
cluster_bench = importlib.import_module("cluster_bench")
rollout_bench = importlib.import_module("rollout_bench")
demo_cluster = importlib.import_module("demo_cluster")


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """A copy of the demo's inventory directory (links resolved) with a pinned known_hosts."""
    copy = tmp_path / "base"
    shutil.copytree(demo_cluster.INVENTORY, copy, ignore=shutil.ignore_patterns("known_hosts"))
    (copy / "known_hosts").write_text("10.214.0.10 ssh-ed25519 AAAA\n")
    return copy


def env_group(path: Path) -> dict[str, Any]:
    group: dict[str, Any] = yaml.safe_load(path.read_text())["all"]["children"]["demo_cluster"]
    return group


def test_the_docker_variant_reaches_the_same_hosts_by_container_name_as_root(base: Path, tmp_path: Path) -> None:
    group = env_group(cluster_bench.variant(base, tmp_path / "docker", docker=True))
    app_hosts = group["children"]["demo_cluster_app"]["hosts"]
    assert app_hosts["slipway-dc-app-2"] == {"ansible_host": "slipway-dc-app-2",
                                             "slipway_private_address": "10.214.0.12"}
    assert group["children"]["demo_cluster_monitoring"]["hosts"]["slipway-dc-data"] == {
        "ansible_host": "slipway-dc-data"}
    assert group["vars"]["ansible_connection"] == "community.docker.docker"
    assert group["vars"]["ansible_user"] == "root"
    assert group["vars"]["ansible_become"] is True
    assert "ansible_ssh_common_args" not in group["vars"]
    # The environment's variables come along, as files (the links to the one-host demo's are resolved).
    images = tmp_path / "docker" / "group_vars" / "demo_cluster" / "images.yml"
    assert images.is_file() and not images.is_symlink()
    assert env_group(base / "hosts.yml")["vars"]["ansible_user"] == "deploy"  # the base is untouched


def test_the_one_vm_variant_has_one_host_holding_every_role_over_ssh(base: Path, tmp_path: Path) -> None:
    path = cluster_bench.variant(base, tmp_path / "solo", hosts={"slipway-dc-solo": "10.214.0.20"})
    group = env_group(path)
    assert "children" not in group
    assert group["hosts"] == {"slipway-dc-solo": {"ansible_host": "10.214.0.20"}}
    assert group["vars"]["ansible_user"] == "deploy"
    (solo,) = demo_cluster.read_inventory(path.parent, "demo_cluster", 8082)[0]
    assert solo.roles == demo_cluster.ROLES and solo.http_port == 8082


def test_the_failing_variant_gives_app_2_alone_fail_health(base: Path, tmp_path: Path) -> None:
    path = cluster_bench.variant(base, tmp_path / "fails", host_vars=cluster_bench.failing_app_2(base))
    override = yaml.safe_load((path.parent / "host_vars" / "slipway-dc-app-2.yml").read_text())
    assert override["slipway_services"]["notes-api"]["env"]["FAIL_HEALTH"] == "true"
    assert sorted(p.name for p in (path.parent / "host_vars").iterdir()) == ["slipway-dc-app-2.yml"]
    main = yaml.safe_load((base / "group_vars" / "demo_cluster" / "main.yml").read_text())
    assert "FAIL_HEALTH" not in main["slipway_services"]["notes-api"].get("env", {})


def test_a_rollouts_lines_on_the_app_hosts_become_one_with_the_slowest_host_per_phase() -> None:
    lines = {
        "a1": {"version": "v2.0.0", "durations": {"start": 0.5, "health": 1.0, "drain": 0.9},
               "start_to_healthy": 1.4},
        "a2": {"version": "v2.0.0", "durations": {"start": 0.7, "health": 0.8}, "start_to_healthy": 1.6,
               "failed_phase": "health"},
        "a3": {},
    }
    merged = cluster_bench.merged(lines)
    assert merged["durations"] == {"start": 0.7, "health": 1.0, "drain": 0.9}
    assert merged["start_to_healthy"] == 1.6
    assert merged["failed_phase"] == "health"
    assert merged["hosts"] == 2
    assert cluster_bench.merged({"a1": {}}) == {}


def rows(walls: dict[tuple[str, str, str], list[float]]) -> list[dict[str, Any]]:
    found = []
    for (label, transport, result), values in walls.items():
        found += [{"label": label, "transport": transport, "result": result, "expect": result, "wall": w,
                   "phase": "", "hosts": 2, "version": "v1.0.0", "durations": {"start": 0.5}, "boot": 1.5}
                  for w in values]
    return found


def test_the_summary_puts_cluster_over_one_vm_per_transport_and_what_ssh_adds() -> None:
    text = "\n".join(cluster_bench.summary(rows({
        ("cluster", "ssh", "deployed"): [12.0, 13.0, 14.0], ("one VM", "ssh", "deployed"): [10.0, 10.0],
        ("cluster", "docker", "deployed"): [11.0], ("one VM", "docker", "deployed"): [10.0],
        ("cluster", "ssh", "noop"): [4.0], ("cluster", "ssh, no ControlPersist", "deployed"): [15.0, 16.0]})))
    assert "| ssh | 13.00 (3) | 10.00 (2) | 1.30 (target <= 1.3) | 4.00 |  |" in text
    assert "| docker | 11.00 (1) | 10.00 (1) | 1.10 (target <= 1.3) |  |  |" in text
    assert "What SSH adds to a deploy, cluster: +2.00 s (1.18x" in text
    assert "| ssh, no ControlPersist | 15.50 (2) |  (0) |  (target <= 1.3) |" in text
    assert "What ControlPersist saves, cluster: +2.50 s" in text
    assert "UNEXPECTED" not in text


def test_an_unexpected_result_is_named() -> None:
    found = rows({("cluster", "ssh", "deployed"): [12.0]})
    found[0]["expect"] = "failed"
    assert "UNEXPECTED: #1 cluster ssh v1.0.0: deployed (expected failed)" in "\n".join(cluster_bench.summary(found))


def test_the_sequence_reads_every_app_hosts_new_line_and_names_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """run_sequence with a stand-in for the playbook and the hosts' history: a host whose line did not change is
    not counted; a failed run is failed in the phase its hosts name."""
    history: dict[str, dict[str, Any]] = {"slipway-dc-app-1": {"n": 0}, "slipway-dc-app-2": {"n": 0}}

    def fake_lines(apps: tuple[str, ...]) -> dict[str, dict[str, Any]]:
        return {app: dict(history.get(app, {})) for app in apps}

    def fake_run(inventory: Path, name: str, *extra: str, env: dict[str, str]) -> tuple[int, float, str]:
        version = extra[-1].split("=", 1)[1]
        assert env == ({"X": "1"} if inventory.name == "ok" else {})
        if inventory.name == "fails":
            for app in history:
                history[app] = {"version": version, "durations": {"health": 20.0}, "failed_phase": "health"}
            return 1, 25.0, "failed"
        if "noop" not in str(inventory):
            history["slipway-dc-app-1"] = {"version": version, "durations": {"start": 0.5, "drain": 1.0},
                                           "start_to_healthy": 1.5}
        return 0, 9.0, "ok"

    monkeypatch.setattr(cluster_bench, "last_lines", fake_lines)
    monkeypatch.setattr(cluster_bench, "SEQUENCE", [("ok", "v1.0.0", "deployed"), ("fails", "v2.0.0", "failed"),
                                                    ("noop", "v2.0.0", "noop")])
    apps = ("slipway-dc-app-1", "slipway-dc-app-2")
    found = {key: cluster_bench.Target("cluster", key, Path("/x") / key, apps, 1, {"X": "1"} if key == "ok" else {})
             for key in ("ok", "fails", "noop")}
    monkeypatch.setattr(cluster_bench.time, "sleep", lambda seconds: None)
    result = cluster_bench.run_sequence(found, threading.Event(), run=fake_run)
    assert [(r["result"], r["phase"], r["hosts"]) for r in result] == [
        ("deployed", "", 1), ("failed", "health", 2), ("noop", "", 0)]
    assert result[0]["floor"] == pytest.approx(2.5)


def test_the_page_names_the_load_the_machine_and_both_edges() -> None:
    args = argparse.Namespace(kept_alive=4, new_connection=4, interval=0.02)
    stats = {8081: rollout_bench.Stats(), 8082: rollout_bench.Stats()}
    stats[8081].add(0.01, 200)
    context = {"started": "2026-12-03 08:00 UTC", "load_before": (3.0, 0, 0), "load_after": (5.5, 0, 0),
               "others": ["cluster-app-1", "cluster-edge"]}
    text = "\n".join(cluster_bench.report(args, stats, rows({("cluster", "ssh", "deployed"): [12.0]}), context))
    assert "load average 3.0 at the start and 5.5 at the end" in text
    assert "Other engineers' containers ran at the same time (2: cluster-app-1, cluster-edge)" in text
    assert "| cluster (slipway-dc-edge), 127.0.0.1:8081 | 1 | 0 | 0 |" in text
    assert "pipelining = True" in text
    assert "| 1 | cluster | ssh | v1.0.0 | deployed | 12.00 |" in text


def test_each_failed_request_is_placed_in_the_rollout_it_fell_in_or_between_two() -> None:
    stats = rollout_bench.Stats()
    stats.add(0.01, 200)
    stats.add(0.02, 503)
    stats.add(10.0, None, "TimeoutError")
    assert (stats.non_2xx, stats.conn_errors, stats.errors) == (1, 1, {"HTTP 503": 1, "TimeoutError": 1})
    windows = [("#1 (cluster, ssh, v2.0.0)", 1000.0, 1030.0), ("#2 (one VM, ssh, v2.0.0)", 1031.0, 1050.0)]
    failures = [(1045.25, "HTTP 503"), (1030.5, "HTTP 502"), (999.0, "TimeoutError"), (1060.0, "HTTP 503")]
    assert rollout_bench.when_failed(failures, windows) == [
        "00:16:39.0 TimeoutError: before the first rollout",
        "00:17:10.5 HTTP 502: between rollouts, 0.5 s after #1 (cluster, ssh, v2.0.0) ended",
        "00:17:25.2 HTTP 503: during #2 (one VM, ssh, v2.0.0), 14.2 s after it started",
        "00:17:40.0 HTTP 503: between rollouts, 10.0 s after #2 (one VM, ssh, v2.0.0) ended",
    ]


def test_the_edge_log_keeps_the_lines_that_explain_a_failure_per_port() -> None:
    log = "\n".join([
        "172.18.0.1:5000 [03/Dec/2026:17:52:31.120] fe_http be_notes-api/notes-api-blue 0/0/1/5/6 200 120 -",
        "172.18.0.1:5001 [03/Dec/2026:17:52:31.300] fe_http be_notes-api/<NOSRV> 0/-1/-1/-1/0 503 217 -",
        "Server be_notes-api/notes-api-blue is DOWN, reason: Layer7 timeout, check duration: 5001ms.",
        "backend be_notes-api has no server available!",
        "Server be_notes-api/notes-api-blue is UP, reason: Layer7 check passed.",
    ])
    asked: list[tuple[str, str]] = []

    def read(host: str, command: str) -> str:
        asked.append((host, command))
        return log if host == "solo" else ""

    lines = cluster_bench.edge_log({8082: "solo", 8081: "edge"}, 1700000000.9, read=read)
    assert asked == [("edge", "docker logs --since 1700000000 edge-proxy 2>&1"),
                     ("solo", "docker logs --since 1700000000 edge-proxy 2>&1")]
    assert lines == [f"8082: {line}" for line in log.splitlines()[1:]]
    assert len(cluster_bench.edge_log({8082: "solo"}, 0, limit=2, read=read)) == 2


def test_the_page_says_when_each_request_failed_and_what_the_edge_logged() -> None:
    args = argparse.Namespace(kept_alive=4, new_connection=4, interval=0.02)
    stats = {8081: rollout_bench.Stats(), 8082: rollout_bench.Stats()}
    stats[8082].failures.append((1045.0, "HTTP 503"))
    stats[8082].errors["HTTP 503"] = 1
    table = rows({("one VM", "ssh", "deployed"): [12.0]})
    table[0]["window"] = ("#1 (one VM, ssh, v1.0.0)", 1040.0, 1052.0)
    context = {"started": "2026-12-03 08:00 UTC", "load_before": (3.0, 0, 0), "load_after": (5.5, 0, 0),
               "others": [], "edge_log": ["8082: backend be_notes-api has no server available!"]}
    text = "\n".join(cluster_bench.report(args, stats, table, context))
    assert "- 8082: 00:17:25.0 HTTP 503: during #1 (one VM, ssh, v1.0.0), 5.0 s after it started" in text
    assert "    8082: backend be_notes-api has no server available!" in text


def test_the_one_vm_bench_page_places_its_failures_too() -> None:
    args = argparse.Namespace(kept_alive=4, new_connection=4, interval=0.02, port=8080, domain="notes.localhost")
    stats = rollout_bench.Stats()
    stats.failures.append((1045.0, "HTTP 503"))
    stats.errors["HTTP 503"], stats.non_2xx = 1, 1
    table = [rollout_bench.row(("deploy", "v2.0.0", "deployed"), (0, 12.0, ""), {"durations": {"start": 1.0}})]
    table[0]["window"] = ("#1 (deploy v2.0.0)", 1044.0, 1056.0)
    text = "\n".join(rollout_bench.report(args, stats, table, [1.5]))
    assert "- 00:17:25.0 HTTP 503: during #1 (deploy v2.0.0), 1.0 s after it started" in text


STAT = "cpu  {user} 5 {system} 9000 40 {irq} 7 3 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"


def test_busy_seconds_counts_every_busy_column_of_the_first_line() -> None:
    ticks = cluster_bench.os.sysconf("SC_CLK_TCK")
    # user 100 + nice 5 + system 50 + irq 2 + softirq 7 + steal 3 (idle 9000 and iowait 40 are not busy)
    assert cluster_bench.busy_seconds(STAT.format(user=100, system=50, irq=2)) == pytest.approx(167 / ticks)
    with pytest.raises(ValueError, match="not /proc/stat's first line"):
        cluster_bench.busy_seconds("intr 1 2 3\n")


def test_idle_cpu_takes_the_baseline_off_each_deploy_and_the_page_gives_both_ratios() -> None:
    """idle_cpu with a stand-in clock, /proc/stat and playbook: the baseline is the busy cores while nothing runs
    (here 0.5), each deploy's CPU is what the machine spent during it less that baseline times its wall time."""
    now = {"t": 0.0, "busy": 0.0, "children": 0.0}
    cost = {"cluster-ssh": (6.0, 9.0, 2.5), "solo-ssh": (4.0, 6.0, 1.0)}  # (wall s, busy CPU s, controller's part)

    def sleep(seconds: float) -> None:
        now["t"] += seconds
        now["busy"] += 0.5 * seconds

    def fake_run(inventory: Path, name: str, *extra: str, env: dict[str, str]) -> tuple[int, float, str]:
        wall, cpu, controller = cost[inventory.name]
        now["t"] += wall
        now["busy"] += cpu
        now["children"] += controller
        return 0, wall, "ok"

    found = {key: cluster_bench.Target("cluster" if key.startswith("cluster") else "one VM", "ssh", Path("/x") / key,
                                       (), 1) for key in cost}
    idle = cluster_bench.idle_cpu(found, run=fake_run, busy=lambda: now["busy"], clock=lambda: now["t"], sleep=sleep,
                                  controller=lambda: now["children"])
    assert idle["baseline"] == pytest.approx(0.5)
    assert [(r["label"], r["version"], r["cpu"], r["controller"]) for r in idle["rows"]] == [
        ("cluster", "v1.0.0", pytest.approx(6.0), pytest.approx(2.5)), ("one VM", "v1.0.0", pytest.approx(4.0), 1.0),
        ("cluster", "v2.0.0", pytest.approx(6.0), pytest.approx(2.5)), ("one VM", "v2.0.0", pytest.approx(4.0), 1.0),
    ] * 2
    text = "\n".join(cluster_bench.cpu_section(idle))
    # The hosts' side is the rest: 6.0 - 2.5.
    assert "| cluster | v1.0.0 | 0 | 6.00 | 6.00 | 2.50 | 3.50 |" in text
    assert ("Cluster / one VM, idle: wall 1.50x, CPU 1.50x (6.00 s against 4.00 s; the controller's 2.50 s against "
            "1.00 s)") in text
    # The hosts' side (6.0 - 2.5 against 4.0 - 1.0) and the controller's part (2.5 against 1.0) compared.
    assert "The hosts' side alone: the cluster's 3.50 s against one VM's 3.00 s (1.17x" in text
    assert "the controller's part 2.50x" in text
    # A deploy that failed is listed, not counted; no deploy at all, no section.
    for failed in idle["rows"]:
        failed["exit"] = 2 if failed["label"] == "cluster" else 0
    assert "Cluster / one VM" not in "\n".join(cluster_bench.cpu_section(idle))
    assert cluster_bench.cpu_section({}) == []


def test_the_sequence_expects_what_each_environments_live_version_makes_and_ends_where_it_began() -> None:
    """Played on a model of the two environments (cluster: every cluster variant, one VM: every solo variant), from
    make demo-cluster's v2.0.0: each deploy expected `deployed` moves its environment to another version, each
    `noop` asks for the live one, the failing rollout changes nothing; both end at v2.0.0; the issue's counts hold
    (>= 6 rollouts with the one-host failure, >= 4 SSH deploys on each side for the ratio's medians)."""
    live = {"cluster": "v2.0.0", "solo": "v2.0.0"}
    for key, version, expect in cluster_bench.SEQUENCE:
        side = key.split("-")[0]
        if expect == "deployed":
            assert version != live[side], f"{key} {version}: already live, this would be a noop"
        elif expect == "noop":
            assert version == live[side], f"{key} {version}: not live ({live[side]}), this would deploy"
        if expect != "failed":
            live[side] = version
    assert live == {"cluster": "v2.0.0", "solo": "v2.0.0"}
    expected = [expect for _, _, expect in cluster_bench.SEQUENCE]
    assert len(expected) >= 6 and "failed" in expected
    for side in ("cluster-ssh", "solo-ssh"):
        assert sum(1 for key, _, expect in cluster_bench.SEQUENCE if key == side and expect == "deployed") >= 4
