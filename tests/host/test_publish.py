"""Across hosts an app host publishes each replica of the new colour on its private address, at the port the
contract derives from the service's slot on that host (slipway_core.cluster); on one VM nothing is published and
the release's config hash is what it always was."""

from __future__ import annotations

import pytest
from world import SERVICE, World

from slipway_core import cluster, contract
from slipway_core.host import release
from slipway_core.host.run import Failed

PRIVATE = "10.0.1.21"


def test_each_replica_is_published_on_the_private_address_at_its_slot_s_port(world3: World) -> None:
    world = world3
    world.image("v1.0.0")
    answer = world.deploy("v1.0.0", "r1", replicas=3, publish_address=PRIVATE)
    assert answer["result"] == "deployed", answer
    world.image("v2.0.0")
    world.begin("v2.0.0", "r2", replicas=3, publish_address=PRIVATE, start_when_ready=False)
    world.advance("v2.0.0", "r2", ["start", "health"], replicas=3, publish_address=PRIVATE)

    slot = world.host.slots.read()[SERVICE]
    published = {spec.name: spec.publish for spec in world.docker.runs}
    assert published[f"{SERVICE}-blue-3"] == [f"{PRIVATE}:{cluster.PUBLISH_PORT_BASE + slot * 16 + 2}:8000"]
    assert published[f"{SERVICE}-green"] == [f"{PRIVATE}:{cluster.PUBLISH_PORT_BASE + slot * 16 + 8}:8000"]
    green2 = next(spec for spec in world.docker.runs if spec.name == f"{SERVICE}-green-2")
    argv = green2.argv()
    assert argv[argv.index("--publish") + 1] == f"{PRIVATE}:{cluster.PUBLISH_PORT_BASE + slot * 16 + 9}:8000"


def test_the_gate_answers_where_the_new_colour_is_published_for_the_monitoring_host(world3: World) -> None:
    """Once every replica passed its gate, the answer names each at `<private address>:<published port>`: what
    Prometheus on the monitoring host scrapes after the switch (cluster_rollout.scrape_plan)."""
    world = world3
    world.image("v1.0.0")
    world.begin("v1.0.0", "r1", replicas=3, publish_address=PRIVATE, start_when_ready=False)
    answer = world.advance("v1.0.0", "r1", ["start", "health"], replicas=3, publish_address=PRIVATE)
    base = cluster.PUBLISH_PORT_BASE + world.host.slots.read()[SERVICE] * 16  # blue: the first colour
    assert answer["published"] == [f"{PRIVATE}:{base + r}" for r in range(3)]
    assert contract.parse_result(answer)["published"] == answer["published"]


def test_one_vm_answers_nothing_published(world: World) -> None:
    world.image("v1.0.0")
    assert world.deploy("v1.0.0", "r1")["published"] == []  # one VM: Prometheus there reads targets/<service>.json
    assert contract.parse_result({"result": "continue", "published": "10.0.1.21:20000"})["published"] == []


def test_without_a_publish_address_nothing_is_published_and_the_hash_is_unchanged(world: World) -> None:
    world.image("v1.0.0")
    assert world.deploy("v1.0.0", "r1")["result"] == "deployed"
    assert all(spec.publish == [] and "--publish" not in spec.argv() for spec in world.docker.runs)
    spec = world.spec("v1.0.0")
    assert release.config_hash({**spec, "publish_address": ""}) == release.config_hash(spec)
    assert release.config_hash({**spec, "publish_address": PRIVATE}) != release.config_hash(spec)


def test_a_release_published_elsewhere_is_not_the_same_release(world: World) -> None:
    """Moving the edge to another host changes what a colour must offer: the next deploy is no noop."""
    world.image("v1.0.0")
    assert world.deploy("v1.0.0", "r1")["result"] == "deployed"
    assert world.begin("v1.0.0", "r2")["result"] == "noop"
    assert world.begin("v1.0.0", "r3", publish_address=PRIVATE)["result"] == contract.CONTINUE


@pytest.mark.parametrize("bad", ["10.0.1", "0.0.0.0/0", "host-1"])
def test_a_bad_publish_address_is_refused_before_anything_runs(world: World, bad: str) -> None:
    with pytest.raises(Failed, match=r"publish_address .* is not an IPv4 address") as refused:
        release.check_spec(world.spec("v1.0.0", publish_address=bad))
    assert refused.value.code == contract.EXIT_USAGE
    assert world.docker.runs == []


def test_a_new_app_host_starts_the_colour_the_cluster_asks_for(world: World) -> None:
    """An app host added to a cluster whose live colour is blue starts green with the others (first_colour); a host
    with a live release ignores it (its idle colour is the other one)."""
    world.image("v1.0.0")
    answer = world.begin("v1.0.0", "r1", first_colour="green", start_when_ready=False)
    assert answer["colour"] == "green"
    world.advance("v1.0.0", "r1", answer["todo"], first_colour="green")
    assert world.state()["live"]["colour"] == "green"
    world.image("v2.0.0")
    assert world.begin("v2.0.0", "r2", first_colour="green", start_when_ready=False)["colour"] == "blue"
    with pytest.raises(Failed, match="first_colour 'red' is not one of blue, green"):
        release.check_spec(world.spec("v1.0.0", first_colour="red"))


def test_an_edge_on_an_app_host_counts_only_its_own_servers(world: World) -> None:
    """The edge on this app host also routes the other app hosts' replicas (<container>.<index>): the replicas check
    compares this host's own servers with the release's count."""
    world.proxy.settings["services"][SERVICE]["servers"] = {
        colour: [f"{SERVICE}-{colour}", f"{SERVICE}-{colour}.2"] for colour in contract.COLOURS}
    world.image("v1.0.0")
    assert world.begin("v1.0.0", "r1", start_when_ready=False)["result"] == contract.CONTINUE
    world.proxy.settings["services"][SERVICE]["servers"]["blue"].insert(1, f"{SERVICE}-blue-2")
    with pytest.raises(Failed, match="runs 1 replica"):
        world.rollout("r2", world.spec("v1.0.0")).check_edge_servers("lock")
