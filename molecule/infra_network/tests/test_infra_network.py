"""infra_network: the shared bridge network isolates and connects containers, and is never recreated in use."""

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from scenario_tools import RunPlaybook

NETWORK = "infra-shared-network"
PROBE = "slipway/test-probe:bookworm"
CONVERGE = Path(__file__).resolve().parent.parent / "converge.yml"
FETCH = (
    "import sys, urllib.request; "
    "print(urllib.request.urlopen(sys.argv[1], timeout=3).status)"
)


def network(host: Any) -> dict[str, Any]:
    return cast("dict[str, Any]", json.loads(host.check_output(f"docker network inspect {NETWORK}"))[0])


@pytest.fixture(scope="module")
def peers(host: Any) -> Iterator[list[str]]:
    """Two HTTP servers on the shared network and one on Docker's default bridge."""
    names = ["slipway-peer-a", "slipway-peer-b", "slipway-outsider"]
    host.run(f"docker rm -f {' '.join(names)}")
    host.check_output(f"docker run -d --name slipway-peer-a --network {NETWORK} {PROBE}")
    host.check_output(f"docker run -d --name slipway-peer-b --network {NETWORK} {PROBE}")
    host.check_output(f"docker run -d --name slipway-outsider {PROBE}")
    for name in names:  # each server answers on its own loopback before the tests start
        for _ in range(20):
            if fetch_from(host, name, "http://127.0.0.1:8080/").rc == 0:
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"{name} did not start: {host.run(f'docker logs {name}').stderr}")
    yield names
    host.run(f"docker rm -f {' '.join(names)}")


def fetch_from(host: Any, container: str, url: str) -> Any:
    return host.run(f'docker exec {container} python3 -c "{FETCH}" {url}')


def test_network_is_a_bridge_with_the_configured_subnet(host: Any) -> None:
    net = network(host)
    assert net["Driver"] == "bridge"
    assert [c["Subnet"] for c in net["IPAM"]["Config"]] == ["10.231.0.0/24"]


def test_peers_resolve_and_reach_each_other_by_name(host: Any, peers: list[str]) -> None:
    for source, target in [("slipway-peer-a", "slipway-peer-b"), ("slipway-peer-b", "slipway-peer-a")]:
        result = fetch_from(host, source, f"http://{target}:8080/")
        assert result.rc == 0, result.stderr
        assert result.stdout.strip() == "200"


def test_default_bridge_cannot_resolve_the_peers(host: Any, peers: list[str]) -> None:
    result = fetch_from(host, "slipway-outsider", "http://slipway-peer-a:8080/")
    assert result.rc != 0
    assert "Name or service not known" in result.stderr or "Temporary failure in name resolution" in result.stderr


def test_default_bridge_cannot_reach_the_peers_by_address(host: Any, peers: list[str]) -> None:
    address = network(host)["Containers"]
    ip = next(c["IPv4Address"].split("/")[0] for c in address.values() if c["Name"] == "slipway-peer-a")
    # The same fetch from a peer works (so the address is right); from the default bridge it must not.
    assert fetch_from(host, "slipway-peer-b", f"http://{ip}:8080/").rc == 0
    result = fetch_from(host, "slipway-outsider", f"http://{ip}:8080/")
    assert result.rc != 0


def test_a_network_in_use_is_never_recreated(host: Any, peers: list[str], run_playbook: RunPlaybook) -> None:
    before = network(host)
    result = run_playbook(CONVERGE, "-e", "infra_network_subnet=10.232.0.0/24")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "never removes or recreates a network in use" in output
    assert "subnet is 10.231.0.0/24, wanted 10.232.0.0/24" in output
    assert "slipway-peer-a" in output
    after = network(host)
    assert after["Id"] == before["Id"]
    assert set(after["Containers"]) == set(before["Containers"])


def test_an_unused_network_with_other_settings_is_recreated(host: Any, run_playbook: RunPlaybook) -> None:
    host.check_output("docker network rm slipway-spare-net || true")
    host.check_output("docker network create --subnet 10.233.0.0/24 slipway-spare-net")
    result = run_playbook(
        CONVERGE, "-e", "infra_network_name=slipway-spare-net", "-e", "infra_network_subnet=10.234.0.0/24"
    )
    try:
        assert result.returncode == 0, result.stdout[-2000:]
        assert "no container is attached: recreating it" in result.stdout
        spare = json.loads(host.check_output("docker network inspect slipway-spare-net"))[0]
        assert [c["Subnet"] for c in spare["IPAM"]["Config"]] == ["10.234.0.0/24"]
    finally:
        host.run("docker network rm slipway-spare-net")
