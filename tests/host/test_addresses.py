"""Fixed addresses: the network plan (contract), slots kept per host, colours started at their address, the app's
/etc/hosts pinned to PostgreSQL's fixed address (the fake engine of fakes.py)."""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from typing import Any

import pytest
from fakes import NETWORK, SUBNET, FakeClock, FakeDocker
from test_failures import command
from world import SERVICE, World

from slipway_core import contract
from slipway_core.host import addresses, proxy_cli
from slipway_core.host.docker import ContainerSpec


# ----------------------------------------------------------------------------------------------------- the plan
def test_the_plan_splits_the_subnet_into_docker_s_pool_and_a_reserved_half() -> None:
    plan = contract.network_plan("172.30.0.0/22")

    assert plan["gateway"] == "172.30.0.1"
    assert plan["ip_range"] == "172.30.0.0/23"
    assert plan["reserved"] == "172.30.2.0/23"
    assert plan["infra"] == {"postgres": "172.30.2.1", "redis": "172.30.2.2"}
    assert plan["slots"] == 30  # (512 - 16 - 1) // 16: the last block would end on the broadcast address
    pool = ipaddress.IPv4Network(plan["ip_range"])
    for address in plan["infra"].values():
        assert ipaddress.IPv4Address(address) not in pool


def test_every_colour_address_is_reserved_distinct_and_clear_of_the_infrastructure() -> None:
    plan = contract.network_plan(contract.NETWORK_SUBNET_DEFAULT)
    seen = [
        contract.colour_address(contract.NETWORK_SUBNET_DEFAULT, slot, colour, replica)
        for slot in range(plan["slots"])
        for colour in contract.COLOURS
        for replica in range(contract.MAX_REPLICAS)
    ]

    assert len(set(seen)) == len(seen)
    reserved = ipaddress.IPv4Network(plan["reserved"])
    assert all(ipaddress.IPv4Address(a) in reserved for a in seen)
    assert not set(seen) & set(plan["infra"].values())
    assert str(reserved.broadcast_address) not in seen  # never the subnet's broadcast address


@pytest.mark.parametrize(
    ("subnet", "says"),
    [("", "not an IPv4 network"), ("172.30.0.1/22", "not an IPv4 network"), ("8.8.0.0/22", "not private"),
     ("10.0.0.0/8", "/16 to /24"), ("192.168.1.0/25", "/16 to /24"), ("fd00::/64", "not an IPv4 network"),
     # Python's is_private says yes to these; they are not RFC 1918 (one notion of "private": contract's).
     ("127.1.0.0/22", "not private"), ("169.254.0.0/22", "not private"), ("198.18.0.0/22", "not private"),
     ("100.64.0.0/22", "not private")],
)
def test_a_subnet_outside_the_rule_is_refused_naming_the_rule(subnet: str, says: str) -> None:
    with pytest.raises(contract.InputRefused, match=says) as err:
        contract.network_plan(subnet)
    assert contract.SUBNET_RULE in str(err.value)


@pytest.mark.parametrize(("slot", "colour", "replica"), [(-1, "blue", 0), (30, "blue", 0), (0, "red", 0),
                                                         (0, "green", contract.MAX_REPLICAS)])
def test_an_address_outside_the_plan_is_refused(slot: int, colour: str, replica: int) -> None:
    with pytest.raises(contract.InputRefused, match="no address"):
        contract.colour_address("172.30.0.0/22", slot, colour, replica)


# ------------------------------------------------------------------------------------------------------ slots
def test_slots_are_kept_and_a_new_service_takes_the_lowest_free_one(tmp_path: Path) -> None:
    slots = addresses.Slots(str(tmp_path / "addresses.json"))

    assert slots.allocate(["b-api", "a-api"], 31) == {"b-api": 0, "a-api": 1}
    # A service listed first later, or alone, keeps its slot; one added gets the next.
    assert slots.allocate(["a-api", "c-api", "b-api"], 31) == {"a-api": 1, "c-api": 2, "b-api": 0}
    assert json.loads((tmp_path / "addresses.json").read_text()) == {"slots": {"a-api": 1, "b-api": 0, "c-api": 2}}


def test_a_dry_run_gives_slots_without_saving_them(tmp_path: Path) -> None:
    slots = addresses.Slots(str(tmp_path / "addresses.json"))
    slots.allocate(["a-api"], 31)

    assert slots.allocate(["a-api", "b-api"], 31, write=False) == {"a-api": 0, "b-api": 1}
    assert slots.read() == {"a-api": 0}


def test_a_full_network_is_refused_naming_the_fix(tmp_path: Path) -> None:
    slots = addresses.Slots(str(tmp_path / "addresses.json"))
    slots.allocate(["a-api", "b-api"], 2)

    with pytest.raises(addresses.AddressError, match=r"no free address slot for c-api.*larger network"):
        slots.allocate(["c-api"], 2)
    assert slots.read() == {"a-api": 0, "b-api": 1}


def test_a_bad_service_name_gets_no_slot(tmp_path: Path) -> None:
    with pytest.raises(contract.InputRefused):
        addresses.Slots(str(tmp_path / "addresses.json")).allocate(["Bad_Name"], 31)


# -------------------------------------------------------------------------------------------------- the network
def network_docker(config: dict[str, Any] | None) -> FakeDocker:
    docker = FakeDocker(FakeClock())
    docker.network = lambda name: None if config is None else {"IPAM": {"Config": [config]}}  # type: ignore[method-assign]
    return docker


@pytest.mark.parametrize(
    ("config", "says"),
    [(None, "does not exist; run playbooks/infra.yml"),
     ({"Subnet": "172.19.0.0/16", "Gateway": "172.19.0.1"}, "ip_range unset.*recreate it once"),
     ({"Subnet": "172.19.0.0/22", "IPRange": "172.19.0.0/24"}, "not 172.19.0.0/23"),
     ({}, "is not an IPv4 network")],
)
def test_a_network_made_without_the_plan_is_refused_naming_the_fix(config: dict[str, Any] | None, says: str,
                                                                   tmp_path: Path) -> None:
    with pytest.raises(addresses.AddressError, match=says):
        addresses.table(network_docker(config), NETWORK, ["a-api"], addresses.Slots(str(tmp_path / "a.json")))


def test_the_table_gives_each_colour_its_slot_s_address(tmp_path: Path) -> None:
    slots = addresses.Slots(str(tmp_path / "addresses.json"))
    answer = addresses.table(FakeDocker(FakeClock()), NETWORK, ["a-api", "b-api"], slots)

    assert answer["gateway"] == "172.18.0.1"
    assert answer["services"] == {
        name: {colour: [contract.colour_address(SUBNET, slot, colour, r) for r in range(8)]
               for colour in ("blue", "green")}
        for name, slot in (("a-api", 0), ("b-api", 1))
    }
    # reserved half + 16 + one slot of 16 + 8 blue replicas; the last green replica ends the slot
    assert answer["services"]["b-api"]["green"][0] == "172.18.2.40"
    assert answer["services"]["b-api"]["green"][7] == "172.18.2.47"
    assert answer["services"]["b-api"]["blue"][1] == "172.18.2.33"


def test_slipway_proxy_addresses_answers_the_table_and_refuses_a_bad_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], world: World
) -> None:
    settings = tmp_path / "proxy.json"
    settings.write_text(json.dumps(world.proxy.settings))
    monkeypatch.setattr(proxy_cli, "Docker", lambda: world.docker)
    path = str(tmp_path / "slots.json")
    def argv(network: str) -> list[str]:
        return ["--settings", str(settings), "addresses", "--addresses", path, "--network", network, SERVICE]

    assert proxy_cli.proxy_main([*argv(NETWORK), "--dry-run"]) == 0
    assert not os.path.exists(path)
    capsys.readouterr()
    assert proxy_cli.proxy_main(argv(NETWORK)) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["services"][SERVICE]["green"][0] == contract.colour_address(SUBNET, 0, "green")
    assert addresses.Slots(path).read() == {SERVICE: 0}

    assert proxy_cli.proxy_main(argv("no-such-net")) == contract.EXIT_USAGE
    assert "no-such-net does not exist" in capsys.readouterr().err
    # A check-mode preview before the network exists: the planned subnet, nothing saved; no proxy settings needed.
    settings.unlink()
    preview = [*argv("no-such-net"), "--dry-run", "--planned-subnet", "10.9.0.0/24"]
    assert proxy_cli.proxy_main(preview) == 0
    previewed = json.loads(capsys.readouterr().out)["services"][SERVICE]["blue"]
    assert previewed[0] == contract.colour_address("10.9.0.0/24", 0, "blue")


# -------------------------------------------------------------------------------------------------- the rollout
def test_argv_gives_the_fixed_address_and_the_pinned_hosts() -> None:
    argv = ContainerSpec("a-blue", "img", "net", ip="172.30.2.16",
                         hosts={"redis": "172.30.2.2", "postgres": "172.30.2.1"}).argv()

    text = " ".join(argv)
    assert "--network net --ip 172.30.2.16" in text
    assert "--add-host postgres:172.30.2.1 --add-host redis:172.30.2.2" in text


def test_each_colour_starts_at_its_own_fixed_address_and_the_edge_reaches_it_there(world: World) -> None:
    world.docker.add_postgres()
    world.image("v1.0.0")
    world.image("v2.0.0")
    spec = {"pin_hosts": ["postgres", "redis"]}

    assert world.deploy("v1.0.0", "r1", **spec)["result"] == "deployed"
    assert world.deploy("v2.0.0", "r2", **spec)["result"] == "deployed"

    blue, green = (world.docker.boxes[contract.container_name(SERVICE, c)] for c in contract.COLOURS)
    assert (blue.ip, blue.fixed) == (contract.colour_address(SUBNET, 0, "blue"), True)
    assert (green.ip, green.fixed) == (contract.colour_address(SUBNET, 0, "green"), True)
    started = [run for run in world.docker.runs if run.detach]
    # postgres is a container with a fixed address: pinned; redis is none here: left to DNS.
    assert all(run.hosts == {"postgres": contract.network_plan(SUBNET)["infra"]["postgres"]} for run in started)
    assert world.serves() == "v2.0.0"


def test_a_rollback_target_restarts_at_the_address_it_was_made_with(two_live: World) -> None:
    assert two_live.deploy("v1.0.0", "r3")["result"] == "deployed"  # blue again, a new container at blue's address

    blue = two_live.docker.boxes[contract.container_name(SERVICE, "blue")]
    assert blue.ip == contract.colour_address(SUBNET, 0, "blue")
    assert two_live.serves() == "v1.0.0"


def test_a_network_without_the_plan_fails_the_start_and_the_live_release_serves_on(
    two_live: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    world = two_live
    world.image("v3.0.0")
    kept = world.docker.inspect(f"{SERVICE}-blue")
    world.docker.network = lambda name: {"IPAM": {"Config": [{"Subnet": "172.19.0.0/16"}]}}  # type: ignore[method-assign]
    todo = world.begin("v3.0.0", "r3", start_when_ready=False)["todo"]

    code, answer = command(world, monkeypatch, capsys, "v3.0.0", "r3", steps=",".join(todo))

    assert code == contract.EXIT_FAILED
    assert (answer["result"], answer["failed_phase"]) == ("failed", "start")
    assert "notes-api-blue has no fixed address: network slipway has subnet 172.19.0.0/16" in answer["message"]
    assert "recreate it once" in answer["message"]
    assert world.docker.inspect(f"{SERVICE}-blue") == kept  # the rollback target untouched
    assert world.serves() == "v2.0.0"
    world.assert_settled("r3")
