"""Replicas: a colour is N containers, each at its own fixed address and its own server in the edge; the rollout
starts, gates, switches, drains, keeps and rolls back all of them together. The edge here is the fake HAProxy
(tests/host/fake_edge.py) provisioned for 3 replicas per colour (`world3`) or for 1 (`world`)."""

from __future__ import annotations

import dataclasses

import pytest
from fakes import NETWORK
from world import BACKEND, SERVICE, World

from slipway_core import contract, release_rules
from slipway_core.host import addresses, queries, recovery, release
from slipway_core.host.docker import labels, running
from slipway_core.host.run import Failed

BLUE3 = contract.colour_containers(SERVICE, "blue", 3)
GREEN3 = contract.colour_containers(SERVICE, "green", 3)


def deploy3(world: World, version: str, run_id: str) -> dict[str, object]:
    world.image(version)
    return world.deploy(version, run_id, replicas=3)


def test_names_follow_the_first_replica_s_and_every_replica_has_its_own_address() -> None:
    assert [f"{SERVICE}-blue", f"{SERVICE}-blue-2", f"{SERVICE}-blue-3"] == BLUE3
    assert contract.kept_container_name(SERVICE, "green", 2) == f"{SERVICE}-green-3-kept"
    servers = release_rules.edge_servers(SERVICE, 3)
    assert [s["name"] for s in servers["green"]] == GREEN3
    assert [s["enabled_by"] for s in servers["blue"]] == ["", "SLIPWAY_LIVE_notes_api_R2", "SLIPWAY_LIVE_notes_api_R3"]


def test_a_deploy_starts_every_replica_and_the_edge_balances_across_them(world3: World) -> None:
    world = world3
    answer = deploy3(world, "v1.0.0", "r1")

    assert answer["result"] == "deployed", answer
    assert world.routed() == sorted(BLUE3)
    ips = [world.docker.boxes[name].ip for name in BLUE3]
    subnet = "172.18.0.0/22"
    assert ips == [contract.colour_address(subnet, 0, "blue", r) for r in range(3)]
    assert [labels(world.docker.inspect(name))["slipway.replica"] for name in BLUE3] == ["1", "2", "3"]
    answered = {world.http.through_proxy(world.spec("v1.0.0")["domain"])[1] for _ in range(6)}
    assert len(answered) == 1  # every replica answers the same release
    assert world.state()["live"]["replicas"] == 3
    live_file = (world.tmp / "live" / f"{SERVICE}.cfg").read_text()
    assert "setenv SLIPWAY_LIVE_notes_api blue" in live_file
    assert "setenv SLIPWAY_LIVE_notes_api_R2 1" in live_file and "SLIPWAY_LIVE_notes_api_R3 1" in live_file
    targets = (world.tmp / "targets" / f"{SERVICE}.json").read_text()
    assert all(f"{name}:8000" in targets for name in BLUE3)


def test_the_next_release_replaces_all_replicas_and_keeps_the_old_ones_stopped(world3: World) -> None:
    world = world3
    deploy3(world, "v1.0.0", "r1")

    answer = deploy3(world, "v2.0.0", "r2")

    assert answer["result"] == "deployed", answer
    assert world.routed() == sorted(GREEN3)
    assert world.serves() == "v2.0.0"
    assert [running(world.docker.inspect(name)) for name in BLUE3] == [False] * 3  # kept for a rollback
    assert [labels(world.docker.inspect(name))["slipway.version"] for name in BLUE3] == ["v1.0.0"] * 3
    world.assert_settled("r2")


def test_one_unhealthy_replica_fails_the_release_and_the_live_one_serves_on(world3: World) -> None:
    world = world3
    deploy3(world, "v1.0.0", "r1")
    deploy3(world, "v2.0.0", "r2")
    world.image("v3.0.0")
    begun = world.begin("v3.0.0", "r3", replicas=3)
    assert begun["result"] == contract.CONTINUE
    third = world.docker.boxes[BLUE3[2]]  # v3's third replica never becomes healthy
    third.behaviour = dataclasses.replace(third.behaviour, unhealthy=True)

    with pytest.raises(Failed) as failed:
        world.advance("v3.0.0", "r3", [s for s in begun["todo"] if s != "start"], replicas=3)
    answer = world.finish("r3", failed.value.phase, str(failed.value))

    assert (answer["result"], answer["failed_phase"]) == ("failed", "health")
    assert f"{BLUE3[2]} (replica 3 of 3) and the other replicas of its colour were removed" in answer["message"]
    assert world.routed() == sorted(GREEN3)
    assert world.serves() == "v2.0.0"
    # The kept v1 replicas are back under their names, stopped; no v3 container is left.
    assert [labels(world.docker.inspect(name))["slipway.version"] for name in BLUE3] == ["v1.0.0"] * 3
    assert not any(running(world.docker.inspect(name)) for name in BLUE3)
    assert not [name for name in world.docker.names() if name.endswith("-kept")]
    assert world.lock() is None


def test_a_rollback_starts_every_kept_replica(world3: World) -> None:
    world = world3
    deploy3(world, "v1.0.0", "r1")
    deploy3(world, "v2.0.0", "r2")
    store = world.store()

    answer = recovery.rollback(world.host, store, world.run("r3"), world.spec("v2.0.0", replicas=3), 120.0)

    assert answer["result"] == "deployed", answer
    assert world.routed() == sorted(BLUE3)
    assert world.serves() == "v1.0.0"
    assert not any(running(world.docker.inspect(name)) for name in GREEN3)
    assert world.state()["live"]["replicas"] == 3


def test_a_release_whose_replicas_the_edge_does_not_route_is_refused_before_anything_changes(world: World) -> None:
    world.image("v1.0.0")
    world.deploy("v1.0.0", "r1")
    world.image("v2.0.0")
    runs_before = len(world.docker.runs)

    with pytest.raises(Failed) as failed:
        world.begin("v2.0.0", "r2", replicas=3)
    answer = world.finish("r2", failed.value.phase, str(failed.value))

    assert answer["result"] == "failed", answer
    assert answer["failed_phase"] == "lock"
    assert "runs 3 replica(s) per colour in this release, but the edge routes 1 per colour" in answer["message"]
    assert "playbooks/infra.yml" in answer["message"]
    assert len(world.docker.runs) == runs_before
    assert world.lock() is None
    assert world.serves() == "v1.0.0"


def test_the_fixed_addresses_of_replicas_never_clash_with_another_service_s(world3: World) -> None:
    slots = world3.host.slots

    table = addresses.table(world3.docker, NETWORK, [SERVICE, "other-api"], slots)
    mine = {a for colour in contract.COLOURS for a in table["services"][SERVICE][colour]}
    theirs = {a for colour in contract.COLOURS for a in table["services"]["other-api"][colour]}
    assert len(mine) == len(theirs) == 2 * contract.MAX_REPLICAS
    assert not mine & theirs


def test_one_replica_hashes_as_a_release_made_before_replicas_existed(world: World) -> None:
    spec = world.spec("v1.0.0")
    assert release.config_hash({**spec, "replicas": 1}) == release.config_hash(spec)
    assert release.config_hash({**spec, "replicas": "1"}) == release.config_hash(spec)  # as a template may give it
    assert release.config_hash({**spec, "replicas": 2}) != release.config_hash(spec)


def test_the_edge_s_view_of_a_colour_is_up_only_when_every_replica_is(world3: World) -> None:
    world = world3
    deploy3(world, "v1.0.0", "r1")
    world.docker.boxes[BLUE3[1]].running = False
    world.clock.sleep(0.05)  # the next check (the switch marked the replicas up at once)

    blue = world.proxy.servers(SERVICE)["blue"]

    assert [m["server"] for m in blue["members"]] == BLUE3
    assert blue["status"] == "DOWN"
    assert world.haproxy.servers[(BACKEND, BLUE3[0])].admin == "ready"


def test_status_is_healthy_only_while_every_live_replica_runs(world3: World) -> None:
    world = world3
    deploy3(world, "v1.0.0", "r1")
    assert queries.status(world.host, world.store())["healthy"] is True

    world.docker.boxes[BLUE3[2]].running = False
    item = queries.status(world.host, world.store())

    assert item["healthy"] is False
    assert f"3 replicas NOT running ({BLUE3[2]})" in item["message"]


def test_a_rollback_to_a_release_with_another_replica_count_than_the_edge_routes_is_refused(world3: World) -> None:
    world = world3
    world.image("v1.0.0")
    world.image("v2.0.0")
    world.deploy("v1.0.0", "r1", replicas=3)
    world.deploy("v2.0.0", "r2", replicas=3)
    kept = world.state()["kept"]
    world.store().save_state(world.state()["live"], {**kept, "replicas": 1})  # kept before a scale-up to 3

    with pytest.raises(Failed) as failed:
        recovery.rollback(world.host, world.store(), world.run("r3"), world.spec("v2.0.0", replicas=3), 120.0)

    assert failed.value.phase == "start"
    assert "the kept release of notes-api ran 1 replica(s) per colour, but the edge now routes 3" in str(failed.value)
    assert world.serves() == "v2.0.0"
    assert not any(running(world.docker.inspect(name)) for name in BLUE3)


def test_the_data_tier_s_ca_directory_is_mounted_read_only_in_every_replica_and_hashed(world3: World) -> None:
    """Across hosts the release names the CA for verify-full (roles/app_release: spec `mounts`): each replica gets
    it read-only, and a release with mounts differs from one without (a one-VM release hashes as before)."""
    world = world3
    world.image("v1.0.0")
    mounts = [{"source": "/etc/slipway/data-tier", "target": "/etc/slipway/data-tier"}]

    world.deploy("v1.0.0", "r1", replicas=3, mounts=mounts)

    for name in BLUE3:
        spec = next(r for r in world.docker.runs if r.name == name)
        assert spec.mounts == [("/etc/slipway/data-tier", "/etc/slipway/data-tier")]
        assert "type=bind,source=/etc/slipway/data-tier,target=/etc/slipway/data-tier,readonly" in spec.argv()
    plain = world.spec("v1.0.0")
    assert release.config_hash({**plain, "mounts": []}) == release.config_hash(plain)
    assert release.config_hash({**plain, "mounts": mounts}) != release.config_hash(plain)


@pytest.mark.parametrize("bad", [{"source": "etc/x", "target": "/x"}, {"source": "/a,b", "target": "/x"}, None])
def test_a_mount_that_is_not_two_absolute_paths_is_refused(world: World, bad: object) -> None:
    world.image("v1.0.0")
    with pytest.raises(Failed, match="give absolute source and target paths"):
        world.deploy("v1.0.0", "r1", mounts=[bad])
    assert not [r for r in world.docker.runs if r.detach]
