"""A deploy refused for low disk on this host, with nothing changed (slipway_core/host/disk.py), on filesystems the
test makes small:

1. Through deploy.yml: jotter's state directory, where `begin` answers the archive goes, on a 64 MiB tmpfs (its
   files copied in, so the host program sees its real state). The archive, a real `docker save`, does not fit with
   the margin: refused before the copy and before the lock; the live release serves on, nothing was written.
2. The image step on a Docker data root on a tmpfs: a second dockerd in this host container (its own data root,
   exec root, socket and containerd namespace; no bridge, no iptables) and this tree's host program. A pull with a
   margin above the free space is refused; a load with less free than the rule's need is refused with the numbers
   and the engine has no image and no partial layer; with exactly the need free, the load succeeds (the factor holds
   on a real engine).

Neither writes to a real service's state: test_full_stack.py, which runs after this file, counts history lines.

slipway/notes-api:v2.1.0 is not on this host (tests/test_image_delivery.py ships it later): test 1 leaves it so.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scenario_tools import EDGE_ADDRESS

from slipway_core import build
from slipway_core.host import disk

HERE = Path(__file__).resolve().parent
PLAYBOOKS = HERE.parents[2] / "playbooks"
CONTAINER = os.environ.get("SLIPWAY_E2E_HOST") or "slipway-full_stack"
STATE = "/var/lib/slipway/services"
SERVICE_DIR = f"{STATE}/jotter"
WORK = "/srv/slipway-disk-test"  # the test's own files on the host, removed afterwards
SAVED = f"{WORK}/jotter-saved"
IMAGE = "slipway/notes-api:v2.1.0"
MIB = 1024 * 1024
PROBE = (
    "import http.client,sys;c=http.client.HTTPConnection(sys.argv[1],80,timeout=5);"
    "c.request('GET','/version',headers={'Host':sys.argv[2]});print(c.getresponse().read().decode())"
)
DIAGNOSTIC_CONTAINERS = ["jotter-blue", "jotter-green"]

ENGINE = f"{WORK}/engine"
SOCKET = f"unix://{ENGINE}/docker.sock"
DOCKERD = (
    f"dockerd --config-file {ENGINE}/daemon.json --data-root {ENGINE}/root --exec-root {ENGINE}/exec "
    f"--pidfile {ENGINE}/dockerd.pid -H {SOCKET} --bridge none --iptables=false --ip-masq=false "
    "--containerd-namespace slipway-disk-test --containerd-plugins-namespace slipway-disk-test-plugins"
)


def mib(size: float) -> str:
    return f"{size / MIB:,.0f} MiB"


def live(host: Any, service: str) -> dict[str, Any]:
    return dict(json.loads(host.check_output(f"cat {STATE}/{service}/state.json"))["live"])


def served_version(host: Any, domain: str) -> str:
    return str(json.loads(host.check_output(f'python3 -c "{PROBE}" {EDGE_ADDRESS} {domain}'))["version"])


def containers(host: Any) -> list[str]:
    return sorted(host.check_output("docker ps -a --format '{{.Names}} {{.ID}} {{.State}}'").splitlines())


def files(host: Any, directory: str) -> str:
    """Every file under `directory` with its SHA-256."""
    return str(host.check_output(f"cd {directory} && find . -type f -exec sha256sum {{}} + | sort"))


def explain(result: subprocess.CompletedProcess[str]) -> str:
    return f"rc {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}"


@pytest.fixture
def small_state_dir(host: Any) -> Iterator[int]:
    """jotter's state directory on a 64 MiB tmpfs holding a copy of its files; unmounted afterwards (the files under
    it were never hidden from anything but this test's deploy). Yields the tmpfs's free bytes."""
    host.run_expect([0], f"rm -rf {SAVED} && mkdir -p {SAVED} && cp -a {SERVICE_DIR}/. {SAVED}/")
    host.run_expect([0], f"mount -t tmpfs -o size=64m tmpfs {SERVICE_DIR} && chmod --reference={SAVED} {SERVICE_DIR}"
                         f" && cp -a {SAVED}/. {SERVICE_DIR}/")
    try:
        yield int(host.check_output(f"df -B1 --output=avail {SERVICE_DIR} | tail -1"))
    finally:
        host.run_expect([0], f"umount {SERVICE_DIR}")
        host.run(f"rm -rf {SAVED}; rmdir {WORK}")


def test_an_archive_the_state_disk_cannot_hold_is_refused_before_the_copy(
    host: Any, run_playbook: Any, small_state_dir: int, tmp_path: Path
) -> None:
    assert host.run(f"docker image inspect {IMAGE}").rc != 0, "the test needs a host without the image"
    archive = tmp_path / "notes-api-v2.1.0.tar"
    subprocess.run(["docker", "save", "--output", str(archive), IMAGE], check=True, timeout=300)
    size = archive.stat().st_size
    before, running, state_files = live(host, "jotter"), containers(host), files(host, SERVICE_DIR)

    refused = run_playbook(
        PLAYBOOKS / "deploy.yml", "-e", "env=local", "-e", "service=jotter", "-e", "version=v2.1.0",
        extra_vars={"app_release_image_archives": {"jotter": str(archive)}},
    )

    assert refused.returncode != 0, explain(refused)
    free = small_state_dir
    expected = (
        f"not enough free disk for the image archive of {IMAGE}: needs {mib(size + 1024 * MIB)} on {SERVICE_DIR} "
        f"(archive {mib(size)} + margin 1,024 MiB), {mib(free)} free"
    )
    assert expected in refused.stdout, explain(refused)
    assert "rollout failed in phase lock" in refused.stdout, explain(refused)  # begin's task: before the copy
    assert "Image | Copy the image archive to the host" not in refused.stdout, explain(refused)  # never reached
    # Nothing changed: not a byte in the state directory (no archive, no lock, no run record, no history line), the
    # same containers, no image, the live release serving.
    assert files(host, SERVICE_DIR) == state_files
    assert containers(host) == running
    assert host.run(f"docker image inspect {IMAGE}").rc != 0
    assert live(host, "jotter") == before
    assert served_version(host, "jotter.localhost") == before["version"]


# ------------------------------------------------------------------------- a Docker data root on a tmpfs
@pytest.fixture
def small_engine(host: Any, tmp_path: Path) -> Iterator[str]:
    """A second dockerd whose data root is a tmpfs (64 MiB until a test resizes it); this tree's host program at
    ENGINE/slipway-host.pyz; a `docker save` of notes-api:v1.0.0 (from the host's engine) at ENGINE/notes.tar.
    Yields the engine's data root; stopped (by its pid), unmounted and removed afterwards."""
    host.run_expect([0], f"mkdir -p {ENGINE}/root {ENGINE}/exec {ENGINE}/state && echo '{{}}' > {ENGINE}/daemon.json")
    host.run_expect([0], f"mount -t tmpfs -o size=64m tmpfs {ENGINE}/root")
    zipapp = tmp_path / "slipway-host.pyz"
    zipapp.write_bytes(build.build()[0])
    subprocess.run(["docker", "cp", str(zipapp), f"{CONTAINER}:{ENGINE}/slipway-host.pyz"], check=True, timeout=60)
    try:
        host.run_expect([0], f"nohup {DOCKERD} > {ENGINE}/dockerd.log 2>&1 &")
        up = f"for i in $(seq 100); do DOCKER_HOST={SOCKET} docker info >/dev/null 2>&1 && exit 0; sleep 0.1; done"
        up += "; exit 1"
        assert host.run(up).rc == 0, host.run(f"tail -20 {ENGINE}/dockerd.log").stdout
        host.run_expect([0], f"docker save --output {ENGINE}/notes.tar slipway/notes-api:v1.0.0")
        yield f"{ENGINE}/root"
    finally:
        pid = host.run(f"cat {ENGINE}/dockerd.pid").stdout.strip()
        if pid.isdigit():
            host.run(f"kill {pid}")
            host.run(f"for i in $(seq 100); do kill -0 {pid} 2>/dev/null || exit 0; sleep 0.1; done; kill -9 {pid}")
        host.run(f"umount {ENGINE}/root")
        host.run(f"rm -rf {ENGINE}; rmdir {WORK}")


def release(host: Any, command: str, run_id: str, *options: str) -> tuple[int, dict[str, Any]]:
    """This tree's slipway-release against the small engine, the release on stdin: (exit code, its answer)."""
    result = host.run(
        f"DOCKER_HOST={SOCKET} python3 {ENGINE}/slipway-host.pyz release --root {ENGINE}/state "
        f"--proxy-settings {ENGINE}/no-edge.json --addresses {ENGINE}/addresses.json {command} disk-probe "
        f"--run-id {run_id} {' '.join(options)} < {ENGINE}/release.json"
    )
    return result.rc, json.loads(result.stdout or "{}")


def write_release(host: Any, margin_mb: int) -> None:
    """The release slipway-release reads on stdin: notes-api v1.0.0 as service disk-probe, with this margin."""
    spec = {
        "service": "disk-probe", "version": "v1.0.0", "image_ref": "slipway/notes-api:v1.0.0", "port": 8000,
        "domain": "disk-probe.localhost", "health_path": "/health", "network": "none", "env": {},
        "disk_margin_mb": margin_mb,
    }
    host.run_expect([0], f"echo '{json.dumps(spec)}' > {ENGINE}/release.json")


def used(host: Any, path: str) -> int:
    return int(host.check_output(f"df -B1 --output=used {path} | tail -1"))


def ship(host: Any, run_id: str) -> dict[str, Any]:
    """begin (the engine lacks the image), then the controller's copy of the archive to the upload path."""
    code, begun = release(host, "begin", run_id)
    assert (code, begun["result"], begun["todo"][0]) == (0, "continue", "image"), begun
    host.run_expect([0], f"cp {ENGINE}/notes.tar {begun['upload']}")
    return begun


def test_a_pull_or_load_the_data_root_cannot_hold_is_refused_and_one_that_fits_loads(
    host: Any, small_engine: str
) -> None:
    root = small_engine
    assert host.check_output(f"DOCKER_HOST={SOCKET} docker info --format '{{{{.DockerRootDir}}}}'") == root
    size = int(host.check_output(f"stat -c %s {ENGINE}/notes.tar"))
    need = int(size * disk.LOAD_FACTOR)
    # A pull (no archive shipped) with a margin 1 MiB above the free space: refused before pulling.
    free = int(host.check_output(f"df -B1 --output=avail {root} | tail -1"))
    margin = free // MIB + 1
    write_release(host, margin)
    code, answer = release(host, "begin", "disk-r0")
    assert (code, answer["todo"][0]) == (0, "image"), answer
    code, answer = release(host, "run", "disk-r0", "--steps", "image")
    assert (code, answer["result"], answer["failed_phase"]) == (1, "failed", "image"), answer
    # No registry answers here (Docker Hub is out of reach): the size is not known, and the message says why.
    assert "not enough free disk for pulling slipway/notes-api:v1.0.0 (its size is not known: " in answer["message"]
    assert (
        f"): needs {mib(margin * MIB)} on {root} (margin {mib(margin * MIB)}), {mib(free)} free" in answer["message"]
    ), answer

    # An archive 32 MiB short of the rule's need: refused, the archive removed, not a byte written to the data root.
    write_release(host, 0)
    host.run_expect([0], f"mount -o remount,size={used(host, root) + need - 32 * MIB} {root}")
    begun = ship(host, "disk-r1")
    before = used(host, root)
    free = int(host.check_output(f"df -B1 --output=avail {root} | tail -1"))
    code, answer = release(host, "run", "disk-r1", "--steps", "image")
    assert (code, answer["result"], answer["failed_phase"]) == (1, "failed", "image"), answer
    assert (
        f"not enough free disk for loading slipway/notes-api:v1.0.0: needs {mib(need)} on {root} "
        f"(image {mib(size)} x {disk.LOAD_FACTOR:g} while loading = {mib(need)} + margin 0 MiB), "
        f"{mib(free)} free" in answer["message"]
    ), answer
    assert host.check_output(f"DOCKER_HOST={SOCKET} docker images -q") == ""
    assert used(host, root) == before, "nothing was written to the data root"
    assert not host.file(begun["upload"]).exists, "the refused archive was removed"
    assert not host.file(f"{ENGINE}/state/disk-probe/lock.json").exists

    # Exactly the need free: the load fits (docker load's real peak is below the rule's factor).
    host.run_expect([0], f"mount -o remount,size={used(host, root) + need} {root}")
    ship(host, "disk-r2")
    started = time.monotonic()
    code, answer = release(host, "run", "disk-r2", "--steps", "image")
    assert (code, answer["result"]) == (0, "continue"), answer
    assert host.run(f"DOCKER_HOST={SOCKET} docker image inspect slipway/notes-api:v1.0.0").rc == 0
    print(f"loaded {mib(size)} into a data root with {mib(need)} free in {time.monotonic() - started:.1f} s")
