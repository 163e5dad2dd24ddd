"""docker_engine on a bare systemd host: the role installed the engine and it runs with the configured daemon.json."""

import json
from typing import Any, cast

import pytest


@pytest.fixture(scope="module")
def docker_info(host: Any) -> dict[str, Any]:
    out = host.check_output("docker info --format '{{json .}}'")
    return cast("dict[str, Any]", json.loads(out))


def test_engine_service_is_enabled_and_running(host: Any) -> None:
    service = host.service("docker")
    assert service.is_running
    assert service.is_enabled


def test_logging_rotates_with_configured_limits(host: Any, docker_info: dict[str, Any]) -> None:
    assert docker_info["LoggingDriver"] == "json-file"
    config = json.loads(host.file("/etc/docker/daemon.json").content_string)
    # converge.yml sets 20m / 3: proves the variables reach the engine, not just the role defaults.
    assert config["log-opts"] == {"max-size": "20m", "max-file": "3"}


@pytest.fixture(scope="module")
def cat_image(host: Any) -> str:
    """A one-binary image (cat + its libraries from the host): the bare host has no images and no registry."""
    host.check_output(
        "tar -chf - $(ldd /usr/bin/cat | grep -o '/[^ ]*') /usr/bin/cat 2>/dev/null | docker import - slipway/cat:test"
    )
    return "slipway/cat:test"


def test_live_restore_is_enabled(docker_info: dict[str, Any]) -> None:
    assert docker_info["LiveRestoreEnabled"] is True


def test_containers_cannot_gain_privileges(host: Any, cat_image: str) -> None:
    status = host.check_output(f"docker run --rm {cat_image} /usr/bin/cat /proc/self/status")
    assert "NoNewPrivs:\t1" in status


def test_registry_mirror_is_configured(docker_info: dict[str, Any]) -> None:
    assert "https://mirror.example.test/" in docker_info["RegistryConfig"]["Mirrors"]


def test_published_ports_need_no_docker_proxy(host: Any, cat_image: str) -> None:
    # userland-proxy off: publishing a port starts no docker-proxy process.
    host.check_output(f"docker run -d --name slipway-ports -p 127.0.0.1:18099:80 {cat_image} /usr/bin/cat")
    try:
        processes = host.check_output("ps -eo comm=")
    finally:
        host.run("docker rm -f slipway-ports")
    assert "docker-proxy" not in processes


def test_new_containers_get_the_rotation_options(host: Any, cat_image: str) -> None:
    host.run("docker rm -f slipway-logcheck")
    host.check_output(f"docker create --name slipway-logcheck {cat_image} /usr/bin/cat")
    try:
        inspect = "docker inspect -f '{{json .HostConfig.LogConfig}}' slipway-logcheck"
        log_config = json.loads(host.check_output(inspect))
    finally:
        host.run("docker rm -f slipway-logcheck")
    assert log_config == {"Type": "json-file", "Config": {"max-size": "20m", "max-file": "3"}}
