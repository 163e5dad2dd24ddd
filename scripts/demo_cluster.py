#!/usr/bin/env python3
"""The cluster demo's hosts (`make demo-cluster`; docs/topology.md, "Try it on this machine").

Four systemd + Docker containers stand in for four VMs, on one private Docker network of their own (slipway-dc,
10.214.0.0/24: clear of the Molecule scenario `cluster`'s cluster-private 10.213.0.0/24 and of the one-host demo's
slipway-local). The hosts, their roles and addresses are read from the checked-in inventory
(inventories/demo_cluster/hosts.yml); each container is started by scripts/local-host.sh (the one-host demo's
script, same options as the Molecule hosts) from the ssh-enabled host image (tests/images/host-ssh; Debian 13 for
slipway-dc-app-1), and is reached over SSH as `deploy` with sudo, as staging and production are.

    scripts/demo_cluster.py up        the network, the hosts (reused when they run), the demo's key authorized for
                                      deploy, the images each host's roles run loaded into its engine, the host
                                      keys pinned in inventories/demo_cluster/known_hosts
    scripts/demo_cluster.py load-images   the images again, into every host (each loads only what its engine lacks)
    scripts/demo_cluster.py slipway ARGS...   this virtualenv's `slipway ARGS --env demo_cluster`, with the demo's
                                      key in SLIPWAY_SSH_PRIVATE_KEY
    scripts/demo_cluster.py down      remove the hosts (and bench/cluster_bench.py's one-VM host), their volumes,
                                      the network and the pinned keys

The demo's key (.cache/demo-cluster/id_ed25519) is made at the first `up` and never committed. bench/cluster_bench.py
uses up() for its one-VM host too (Host, hosts_of).
"""

# ruff: noqa: S603, S607 - fixed argument lists: docker, ssh-keygen, ssh-keyscan and scripts/local-host.sh
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
ENV = "demo_cluster"
INVENTORY = ROOT / "inventories" / ENV
NETWORK = "slipway-dc"
SUBNET = "10.214.0.0/24"
GATEWAY = "10.214.0.1"
HTTP_PORT = 8081  # the edge's port 80, published on 127.0.0.1 (the one-host demo's is 8080)
KEY = ROOT / ".cache" / "demo-cluster" / "id_ed25519"
HOST_IMAGE = "slipway/test-host-ssh:bookworm"
# The hosts that run Debian 13 (the issue asks for at least one), as in the Molecule scenario `cluster`.
DEBIAN_13 = frozenset({"slipway-dc-app-1"})
TRIXIE_IMAGE = "slipway/test-host-ssh:trixie"
ROLES = ("edge", "app", "data", "monitoring")
# Which of the environment's image variables (images.yml) each role runs; app hosts run the sample service's builds.
# Every host runs the node exporter the monitoring host scrapes, the data host its PostgreSQL and Redis exporters
# (docs/topology.md, "Monitoring across hosts").
ROLE_IMAGES: Mapping[str, tuple[str, ...]] = {
    "edge": ("edge_proxy_image", "prometheus_node_exporter_image"),
    "data": ("postgresql_image", "redis_image", "prometheus_postgres_exporter_image", "prometheus_redis_exporter_image",
             "prometheus_node_exporter_image"),
    "monitoring": ("prometheus_image", "prometheus_node_exporter_image", "prometheus_postgres_exporter_image",
                   "prometheus_redis_exporter_image"),
    "app": ("prometheus_node_exporter_image",),
}
# The bench's one-VM host (bench/cluster_bench.py) lives on the same network; `down` removes it too.
SOLO = "slipway-dc-solo"
LOCAL_HOST = ROOT / "scripts" / "local-host.sh"
BIN = Path(sys.executable).parent


class DemoError(Exception):
    """What went wrong and what to do about it."""


@dataclass(frozen=True)
class Host:
    name: str  # the inventory's host name = the container's name
    address: str  # on NETWORK
    roles: tuple[str, ...]
    image: str  # the host container's image
    http_port: int | None  # the edge's port 80 on 127.0.0.1, or None


def hosts_of(inventory: Mapping[str, Any], env: str, http_port: int = HTTP_PORT) -> list[Host]:
    """The hosts of `env` in a parsed hosts.yml, each with its roles (the groups <env>_<role>; an environment
    without them has one host holding every role) and address (ansible_host), in inventory order."""
    group = ((inventory.get("all") or {}).get("children") or {}).get(env)
    if not isinstance(group, Mapping):
        raise DemoError(f"the inventory has no group {env!r} under all.children")
    found: dict[str, dict[str, Any]] = {}
    roles: dict[str, list[str]] = {}
    children = group.get("children") or {}
    for role in ROLES:
        for name, hostvars in ((children.get(f"{env}_{role}") or {}).get("hosts") or {}).items():
            found.setdefault(name, {}).update(hostvars or {})
            roles.setdefault(name, []).append(role)
    for name, hostvars in (group.get("hosts") or {}).items():
        found.setdefault(name, {}).update(hostvars or {})
        roles.setdefault(name, list(ROLES) if not children else [])
    hosts = []
    for name, hostvars in found.items():
        address = hostvars.get("ansible_host")
        if not address:
            raise DemoError(f"host {name} has no ansible_host (its address on {NETWORK}) in the inventory")
        hosts.append(Host(name, str(address), tuple(roles[name]), TRIXIE_IMAGE if name in DEBIAN_13 else HOST_IMAGE,
                          http_port if "edge" in roles[name] else None))
    return hosts


def images_for(host: Host, image_vars: Mapping[str, str], sample_images: Sequence[str]) -> list[str]:
    """The images `host`'s roles run: the environment's image variables per role, the sample's builds on an app
    host."""
    images = [image_vars[var] for role in host.roles for var in ROLE_IMAGES[role]]
    if "app" in host.roles:
        images += sample_images
    return list(dict.fromkeys(images))


def local_host_env(host: Host, network: str = NETWORK) -> dict[str, str]:
    """scripts/local-host.sh's settings for `host`."""
    return {"SLIPWAY_LOCAL_HOST": host.name, "SLIPWAY_LOCAL_HOST_IMAGE": host.image,
            "SLIPWAY_LOCAL_HTTP_PORT": "" if host.http_port is None else str(host.http_port),
            "SLIPWAY_LOCAL_NETWORK": network, "SLIPWAY_LOCAL_ADDRESS": host.address}


def pinned_keys(scan: str, addresses: Iterable[str]) -> list[str] | None:
    """ssh-keyscan's key lines, sorted, when every address answered; None while one has not (sshd starting)."""
    lines = sorted(line for line in scan.splitlines() if line[:1].isdigit())
    answered = {line.split()[0] for line in lines}
    return lines if set(addresses) <= answered else None


def read_inventory(inventory_dir: Path, env: str, http_port: int = HTTP_PORT) -> tuple[list[Host], dict[str, str]]:
    """The hosts of inventories/<env>/hosts.yml and the image variables of its group_vars/<env>/images.yml."""
    hosts = hosts_of(yaml.safe_load((inventory_dir / "hosts.yml").read_text(encoding="utf-8")), env, http_port)
    image_vars = yaml.safe_load((inventory_dir / "group_vars" / env / "images.yml").read_text(encoding="utf-8"))
    return hosts, {str(k): str(v) for k, v in image_vars.items()}


def _run(argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(argv), text=True, capture_output=True, check=False, **kwargs)
    if done.returncode != 0:
        raise DemoError(f"{' '.join(argv[:4])} ... exited {done.returncode}: {(done.stderr or done.stdout)[-1500:]}")
    return done


def ensure_network(network: str = NETWORK, subnet: str = SUBNET, gateway: str = GATEWAY) -> None:
    if subprocess.run(["docker", "network", "inspect", network], capture_output=True, check=False).returncode == 0:
        return
    _run(["docker", "network", "create", "--subnet", subnet, "--gateway", gateway, network])
    print(f"created Docker network {network} ({subnet})")


def ensure_key(key: Path = KEY) -> str:
    """The demo's private key (made once, 0600); returns its public key."""
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "slipway-demo-cluster", "-f", str(key)])
    return key.with_suffix(".pub").read_text(encoding="utf-8")


def start_hosts(hosts: Sequence[Host], network: str = NETWORK) -> None:
    """local-host.sh up for every host at once (each waits for its systemd)."""
    procs = [(host, subprocess.Popen([str(LOCAL_HOST), "up"], env={**os.environ, **local_host_env(host, network)},
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
             for host in hosts]
    failed = []
    for host, proc in procs:
        out, _ = proc.communicate()
        sys.stdout.write(out)
        if proc.returncode != 0:
            failed.append(host.name)
    if failed:
        raise DemoError(f"host container(s) {', '.join(failed)} did not start (output above)")


def authorize(host: Host, public_key: str) -> None:
    """The demo's key is the only one `deploy` accepts."""
    keys = "/home/deploy/.ssh/authorized_keys"
    _run(["docker", "exec", "-i", host.name, "sh", "-c", f"umask 077 && cat > {keys} && chown deploy:deploy {keys}"],
         input=public_key)


def load_images(hosts: Sequence[Host], image_vars: Mapping[str, str]) -> None:
    """local-host.sh load-images on every host at once (each loads only what its engine lacks). A fresh Debian 13
    host has no `docker` command before provisioning installs docker-cli: local-host.sh then loads through the
    engine's API socket (scripts/inner_engine.py), so provisioning finds every image it runs."""
    sample = _run(["bash", str(ROOT / "tests" / "harness" / "build_sample.sh"), "--list"]).stdout.split()
    procs = [(host, subprocess.Popen([str(LOCAL_HOST), "load-images", *images_for(host, image_vars, sample)],
                                     env={**os.environ, "SLIPWAY_LOCAL_HOST": host.name},
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
             for host in hosts]
    for host, proc in procs:
        out, _ = proc.communicate()
        sys.stdout.write(out)
        if proc.returncode != 0:
            raise DemoError(f"loading the images into {host.name} failed: {out.strip()[-500:]}")


def pin_host_keys(hosts: Sequence[Host], known_hosts: Path, tries: int = 30) -> None:
    """ssh-keyscan every host's address into `known_hosts` (the inventory's UserKnownHostsFile)."""
    addresses = [host.address for host in hosts]
    for _ in range(tries):
        scan = subprocess.run(["ssh-keyscan", "-T", "5", *addresses], capture_output=True, text=True, check=False)
        lines = pinned_keys(scan.stdout, addresses)
        if lines is not None:
            known_hosts.write_text("\n".join(lines) + "\n", encoding="utf-8")
            known_hosts.chmod(0o600)
            return
        time.sleep(1)
    raise DemoError(f"ssh-keyscan got no key from some of {', '.join(addresses)}: is sshd running in each host?")


@dataclass(frozen=True)
class Site:
    """Where a set of hosts lives on this machine: its Docker network and the key `deploy` accepts (the demo's by
    default; bench/move_to_three.py brings its own up beside it)."""

    network: str = NETWORK
    subnet: str = SUBNET
    gateway: str = GATEWAY
    key: Path = KEY


def up(inventory_dir: Path = INVENTORY, env: str = ENV, http_port: int = HTTP_PORT,
       site: Site | None = None) -> list[Host]:
    """Bring the hosts of `inventory_dir` up on `site`'s network (default: the demo's), ready for `slipway
    provision` over SSH with its key; the edge's port 80 on 127.0.0.1:`http_port`."""
    site = site or Site()
    chosen, image_vars = read_inventory(inventory_dir, env, http_port)
    ensure_network(site.network, site.subnet, site.gateway)
    start_hosts(chosen, site.network)
    public_key = ensure_key(site.key)
    for host in chosen:
        authorize(host, public_key)
    load_images(chosen, image_vars)
    pin_host_keys(chosen, inventory_dir / "known_hosts")
    print(f"{len(chosen)} host(s) ready: {', '.join(h.name for h in chosen)}; "
          f"host keys pinned in {inventory_dir / 'known_hosts'}")
    return chosen


def load_images_again(inventory_dir: Path = INVENTORY, env: str = ENV) -> None:
    """The images of every host again (a no-op for the images a host has)."""
    found, image_vars = read_inventory(inventory_dir, env)
    load_images(found, image_vars)


def down(names: Sequence[str], network: str = NETWORK, known_hosts: Path = INVENTORY / "known_hosts") -> None:
    """Remove the host containers `names` (and their volumes), then `network` and the pinned keys."""
    for name in names:
        subprocess.run([str(LOCAL_HOST), "down"], env={**os.environ, "SLIPWAY_LOCAL_HOST": name}, check=False)
    subprocess.run(["docker", "network", "rm", network], capture_output=True, check=False)
    known_hosts.unlink(missing_ok=True)


def slipway(args: Sequence[str]) -> int:
    """This virtualenv's slipway, with the demo's key and environment."""
    if not KEY.exists():
        raise DemoError(f"{KEY} is missing: run `make demo-cluster` first")
    env = {**os.environ, "SLIPWAY_SSH_PRIVATE_KEY": KEY.read_text(encoding="utf-8")}
    return subprocess.run([str(BIN / "slipway"), *args, "--env", ENV], cwd=ROOT, env=env, check=False).returncode



def main(argv: Sequence[str]) -> int:
    command, *rest = list(argv) or [""]
    try:
        if command == "up" and not rest:
            up()
            return 0
        if command == "load-images" and not rest:
            load_images_again()
            return 0
        if command == "down" and not rest:
            hosts, _ = read_inventory(INVENTORY, ENV)
            down([*(h.name for h in hosts), SOLO])
            return 0
        if command == "slipway" and rest:
            return slipway(rest)
    except DemoError as exc:
        sys.stderr.write(f"demo_cluster: {exc}\n")
        return 1
    sys.stderr.write("usage: demo_cluster.py up | load-images | down | slipway ARGS...\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
