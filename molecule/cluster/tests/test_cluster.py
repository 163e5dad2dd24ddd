"""The cluster after `slipway provision --env cluster` over SSH (converge.yml): each role on the host that holds it
and on no other, the engine on the Debian 13 host, the provision really came over SSH as `deploy` with sudo, and
the pinned known_hosts is what ssh checks (a changed key is refused; an unpinned host is refused by slipway before
any connection). The `host` fixture (Molecule's inventory, Docker connection) runs each test on every host.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import cluster_run
import pytest
import yaml

# The containers each host runs after infra.yml (docs/topology.md): exactly these, no more.
# cluster-app-2 is also the monitoring host; every host runs its node exporter (docs/topology.md, "Monitoring across
# hosts").
EDGE = {"edge-proxy", "node-exporter"}
APP = {"node-exporter"}
DATA = {"postgres", "redis", "node-exporter", "postgres-exporter", "redis-exporter"}
EXPECTED = {"cluster-edge": EDGE, "cluster-app-1": APP, "cluster-app-2": APP | {"prometheus"}, "cluster-data": DATA}
DEBIAN = {"cluster-edge": "12", "cluster-app-1": "13", "cluster-app-2": "12", "cluster-data": "12"}
NETWORK = "infra-shared-network"
GATEWAY = "10.213.0.1"  # the machine running Molecule, on cluster-private
# The connection checks that run ansible-playbook or slipway from this machine: one host per Debian release.
CONNECTION_CHECKED = ("cluster-edge", "cluster-app-1")
DIAGNOSTIC_CONTAINERS = ("edge-proxy", "postgres", "redis", "prometheus")
PING = """\
- name: Reach each host
  hosts: cluster
  gather_facts: false
  tasks:
    - name: Ping
      ansible.builtin.ping:
"""


def name(host: Any) -> str:
    return str(host.backend.get_hostname())


def inventory() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(
        (cluster_run.ops_dir() / "inventories" / cluster_run.ENV / "hosts.yml").read_text(encoding="utf-8"))
    return data


def address(hostname: str) -> str:
    for group in inventory()["all"]["children"]["cluster"]["children"].values():
        found = (group.get("hosts") or {}).get(hostname)
        if found:
            return str(found["ansible_host"])
    raise AssertionError(f"{hostname} has no address in inventories/cluster")


def test_each_host_runs_exactly_the_containers_of_its_roles(host: Any) -> None:
    running = host.run("docker ps --format '{{.Names}} {{.Status}}'")
    assert running.rc == 0, running.stderr
    names = {line.split()[0] for line in running.stdout.splitlines() if line.strip()}
    # The sample service's colours on the app hosts, once test_cluster_rollout.py deployed it (a verify run again).
    names -= {n for n in names if name(host).startswith("cluster-app-") and n.startswith("notes-api-")}
    assert names == EXPECTED[name(host)], running.stdout
    assert all(" (unhealthy)" not in line for line in running.stdout.splitlines()), running.stdout
    every = host.run("docker ps -a --format '{{.Names}}'").stdout.split()
    assert sorted(every) == sorted(names), "stopped containers left over: " + " ".join(every)


def test_every_host_has_the_engine_and_the_shared_network(host: Any) -> None:
    assert host.service("docker").is_running
    assert host.service("docker").is_enabled
    network = host.run(f"docker network inspect -f '{{{{.Driver}}}}' {NETWORK}")
    assert network.rc == 0 and network.stdout.strip() == "bridge", network.stdout + network.stderr


def test_the_engine_runs_on_each_debian_release_with_its_cli(host: Any) -> None:
    release = host.file("/etc/debian_version").content_string.strip()
    assert release.split(".")[0] == DEBIAN[name(host)], release
    if DEBIAN[name(host)] == "13":
        # trixie's docker.io has no `docker` command: docker_engine installed docker-cli (the image has none).
        assert host.package("docker-cli").is_installed
    info = host.run("docker info --format '{{.ServerVersion}} {{.Driver}} {{.LiveRestoreEnabled}}'")
    assert info.rc == 0, info.stderr
    version, driver, live_restore = info.stdout.split()
    assert driver == "overlay2" and live_restore == "true", info.stdout
    client = host.run("docker version --format '{{.Client.Version}}'").stdout.strip()
    assert client == version, f"client {client} and engine {version} come from one release"


def test_the_inventory_address_is_the_host_on_the_private_network(host: Any) -> None:
    addresses = host.run("ip -4 -o addr show").stdout
    assert f"inet {address(name(host))}/24" in addresses, addresses
    assert str(inventory()["all"]["children"]["cluster"]["vars"]["ansible_user"]) == "deploy"


def test_the_provision_came_over_ssh_as_deploy_with_sudo(host: Any) -> None:
    fingerprint = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(cluster_run.key_file()) + ".pub"], capture_output=True, text=True, check=True,
    ).stdout.split()[1]
    journal = host.run("journalctl --no-pager -o cat").stdout
    accepted = [line for line in journal.splitlines() if line.startswith("Accepted ")]
    assert accepted, "sshd accepted no login"
    assert all(f"for deploy from {GATEWAY} " in line and line.endswith(fingerprint) for line in accepted), accepted
    # sudo's own log line of each become by deploy: Ansible's SSH (the deploys) runs `echo BECOME-SUCCESS-...; python3`,
    # Mitogen's (infra.yml's provisioning plays) its Python with no such marker; both name the command run as root.
    sudo = [line for line in journal.splitlines() if line.strip().startswith("deploy : ") and "USER=root" in line]
    assert sudo and all("COMMAND=" in line for line in sudo), "no become through sudo by deploy in the journal"
    # Key authentication only: sshd refuses passwords and root.
    config = host.run("sshd -T").stdout.lower()
    assert "passwordauthentication no" in config and "permitrootlogin no" in config


def test_the_host_program_answers_on_the_edge_and_the_app_hosts_only(host: Any) -> None:
    """Installed over SSH by the host_command action (stderr no longer merged into stdout by `ssh -tt`): on the edge
    by its role, on the app hosts by infra.yml's play that reads their address slots (the edge's servers)."""
    program = host.file("/usr/local/sbin/slipway-proxy")
    if name(host) == "cluster-data":
        assert not program.exists
        return
    assert program.is_symlink
    answer = host.run("/usr/local/sbin/slipway-proxy --help")
    assert answer.rc == 0 and "usage" in answer.stdout.lower(), answer.stdout + answer.stderr
    if name(host).startswith("cluster-app-"):
        slots = host.run("cat /var/lib/slipway/addresses.json")
        assert slots.rc == 0 and '"notes-api"' in slots.stdout, slots.stdout + slots.stderr


def _ping(known_hosts: Path, limit: str, control_dir: Path) -> subprocess.CompletedProcess[str]:
    play = control_dir / "ping.yml"
    play.write_text(PING, encoding="utf-8")
    args = f"-o UserKnownHostsFile={known_hosts} -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes"
    # A control directory of its own: no master connection of an earlier run skips the host key check.
    return cluster_run.playbook(
        play, "-l", limit, "-e", f"ansible_ssh_common_args='{args}'",
        extra_env={"ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dir / "cp")}, timeout=120,
    )


def test_a_host_whose_key_changed_is_refused(host: Any, tmp_path: Path) -> None:
    me = name(host)
    if me not in CONNECTION_CHECKED:
        pytest.skip(f"checked on {', '.join(CONNECTION_CHECKED)} (Debian 12 and 13)")
    other = "cluster-app-2" if me != "cluster-app-2" else "cluster-app-1"
    pinned = cluster_run.known_hosts().read_text(encoding="utf-8").splitlines()
    mine = [line for line in pinned if line.split()[0] == address(me)]
    theirs = [line for line in pinned if line.split()[0] == address(other)]
    assert mine and theirs, pinned
    # My address now pinned to the other host's keys: what ssh sees when a host's key changed.
    forged = [line for line in pinned if line.split()[0] != address(me)]
    forged += [address(me) + " " + line.split(None, 1)[1] for line in theirs]
    known = tmp_path / "known_hosts"
    known.write_text("\n".join(forged) + "\n", encoding="utf-8")
    run = _ping(known, f"{me},{other}", tmp_path)
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in out or "Host key verification failed" in out, out[-3000:]
    recap = {line.split()[0]: line for line in run.stdout.splitlines() if " : ok=" in line}
    assert "unreachable=1" in recap[me], recap
    assert "unreachable=0" in recap[other] and "failed=0" in recap[other], recap
    # The same run with the pinned file reaches both, and ControlPersist keeps their connections for the next task.
    good = _ping(cluster_run.known_hosts(), f"{me},{other}", tmp_path)
    assert good.returncode == 0, (good.stdout + good.stderr)[-3000:]
    masters = [p for p in (tmp_path / "cp").iterdir() if p.is_socket()]
    assert len(masters) == 2, masters


def test_slipway_refuses_an_unpinned_host_before_any_connection(host: Any, tmp_path: Path) -> None:
    me = name(host)
    if me not in CONNECTION_CHECKED:
        pytest.skip(f"checked on {', '.join(CONNECTION_CHECKED)} (Debian 12 and 13)")
    ops = tmp_path / "ops"
    shutil.copytree(cluster_run.ops_dir(), ops, symlinks=True)
    known = ops / "inventories" / cluster_run.ENV / "known_hosts"
    lines = known.read_text(encoding="utf-8").splitlines()
    known.write_text("\n".join(line for line in lines if line.split()[0] != address(me)) + "\n", encoding="utf-8")
    before = host.run("journalctl --no-pager -o cat | grep -c '^Accepted ' || true").stdout.strip()
    env = cluster_run.environ({"SLIPWAY_SSH_PRIVATE_KEY": cluster_run.key_file().read_text(encoding="utf-8")})
    run = subprocess.run(
        [str(cluster_run.BIN / "slipway"), "provision", "--env", cluster_run.ENV, "--project-dir", str(ops),
         "--no-notify"], capture_output=True, text=True, env=env, timeout=120, check=False,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert f"no pinned host key for {me} ({address(me)})" in run.stderr, run.stderr
    after = host.run("journalctl --no-pager -o cat | grep -c '^Accepted ' || true").stdout.strip()
    assert after == before, "slipway connected before refusing"
