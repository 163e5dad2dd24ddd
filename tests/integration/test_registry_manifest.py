"""The size a pull will take, read from a real registry (host/registry.py, Docker.pull_size): the test registry
image (Debian's docker-registry, tests/images/registry, built by `make prepare`) on a loopback port of this
machine, the sample service's image pushed to it, and the real docker CLI and engine of this machine.

- The compressed size the host program reads equals the one the registry's own manifest API lists (asked here
  over HTTP, independently of the docker CLI); the engine's default insecure range (127.0.0.0/8) makes it ask
  with --insecure, as the engine's own pull does.
- PULL_FACTOR times that size covers the image once unpacked (`docker image inspect` Size).
- An unknown tag is a size not known, with docker's reason, never an exception.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator

import pytest

from slipway_core.host import registry
from slipway_core.host.docker import Docker

pytestmark = pytest.mark.integration
REGISTRY_IMAGE = "slipway/test-registry:bookworm"
SAMPLE = "slipway/notes-api:v1.0.0"
NAME = "slipway-registry-it"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False, timeout=300)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def pushed() -> Iterator[str]:
    """The sample image in a registry on 127.0.0.1: its reference there."""
    if docker("info").returncode != 0:
        pytest.skip("no Docker engine answers")
    for image in (REGISTRY_IMAGE, SAMPLE):
        assert docker("image", "inspect", image).returncode == 0, f"{image} is missing: run `make prepare`"
    port = free_port()
    docker("rm", "-f", NAME)
    started = docker("run", "-d", "--name", NAME, "--network", "host", "-e", f"REGISTRY_HTTP_ADDR=127.0.0.1:{port}",
                     REGISTRY_IMAGE)
    assert started.returncode == 0, started.stderr
    ref = f"127.0.0.1:{port}/notes-api:v1.0.0"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2).close()
                break
            except OSError:
                time.sleep(0.1)
        assert docker("tag", SAMPLE, ref).returncode == 0
        push = docker("push", ref)
        assert push.returncode == 0, push.stderr
        yield ref
    finally:
        docker("rmi", ref)
        docker("rm", "-f", NAME)


def registry_manifest_bytes(ref: str) -> int:
    where, rest = ref.split("/", 1)
    name, tag = rest.rsplit(":", 1)
    request = urllib.request.Request(f"http://{where}/v2/{name}/manifests/{tag}", headers={"Accept": MANIFEST_V2})
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
        manifest = json.load(answer)
    return int(manifest["config"]["size"]) + sum(int(layer["size"]) for layer in manifest["layers"])


def test_the_size_is_the_registry_s_own_and_the_factor_covers_the_unpacked_image(pushed: str) -> None:
    size, why = Docker().pull_size(pushed, None)

    assert why == ""
    assert size == registry_manifest_bytes(pushed) > 0
    unpacked = int(docker("image", "inspect", "--format", "{{.Size}}", SAMPLE).stdout)
    assert size < unpacked <= size * registry.PULL_FACTOR


def test_an_unknown_tag_is_a_size_not_known_with_docker_s_reason(pushed: str) -> None:
    size, why = Docker().pull_size(pushed.rsplit(":", 1)[0] + ":v0.0.0-missing", None)

    assert size == 0
    assert why.startswith("docker manifest inspect failed: ") and "manifest" in why.removeprefix("docker manifest")
