"""Releases kept and pruned (issue 15): the last `keep_releases` releases per service keep their images; after a
successful rollout the older ones' tags and the service's stray stopped containers go; never an image a kept
release of any service needs, one a run is deploying, or one never released here. The engine is the fake one."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from fakes import Behaviour
from world import SERVICE, World

from slipway_core import contract, release_rules
from slipway_core.host import recovery, releases
from slipway_core.host.docker import DockerError
from slipway_core.host.lock import Lock
from slipway_core.host.run import Failed
from slipway_core.host.store import Store

VERSIONS = [f"v{n}.0.0" for n in range(1, 6)]


def deploy_all(world: World, versions: list[str], **over: object) -> dict[str, object]:
    """Deploy each version in turn; the last answer."""
    answer: dict[str, object] = {}
    for version in versions:
        world.image(version)
        answer = world.deploy(version, f"r-{version}", **over)
        assert answer["result"] == "deployed", answer
    return answer


def tags(world: World) -> list[str]:
    return sorted(ref.rpartition(":")[2] for ref in world.docker.tags(world.ref("v1.0.0").rpartition(":")[0]))


def test_the_last_three_releases_keep_their_images_and_older_ones_are_pruned(world: World) -> None:
    last = deploy_all(world, VERSIONS)

    state = world.state()
    assert [r["version"] for r in state["releases"]] == ["v5.0.0", "v4.0.0", "v3.0.0"]
    assert tags(world) == ["v3.0.0", "v4.0.0", "v5.0.0"]
    assert world.docker.names() == {f"{SERVICE}-blue", f"{SERVICE}-green"}  # live v5 and kept v4
    assert str(last["message"]).endswith("; pruned 1 image of older releases")  # v2's (v1's went with v4)
    assert ("image-prune",) in world.docker.calls


def test_keep_releases_is_the_role_s_setting(world: World) -> None:
    deploy_all(world, VERSIONS[:4], keep_releases=2)

    assert [r["version"] for r in world.state()["releases"]] == ["v4.0.0", "v3.0.0"]
    assert tags(world) == ["v3.0.0", "v4.0.0"]


def test_an_image_loaded_but_never_live_here_is_left_alone(world: World) -> None:
    world.image("v9.0.0")  # staged for a later deploy
    world.image("v8.0.0-badhealth", Behaviour(unhealthy=True))
    deploy_all(world, VERSIONS[:1])
    with pytest.raises(Failed):
        world.deploy("v8.0.0-badhealth", "r-bad")
    world.finish("r-bad", "health", "unhealthy")  # a failed release: a retry needs its image

    deploy_all(world, VERSIONS[1:])

    assert {"v8.0.0-badhealth", "v9.0.0"} <= set(tags(world))
    assert "v1.0.0" not in tags(world)


def test_an_image_another_service_keeps_is_not_removed(world: World) -> None:
    other = Store(world.root, "other-api", world.clock)
    v1 = world.image("v1.0.0")
    other.save_state({"colour": "blue", "version": "v1.0.0", "image_id": v1}, None)

    deploy_all(world, VERSIONS)

    assert tags(world) == ["v1.0.0", "v3.0.0", "v4.0.0", "v5.0.0"]


def test_an_image_a_run_in_progress_deploys_is_not_removed(world: World) -> None:
    deploy_all(world, VERSIONS[:3])  # v1 is still kept by the releases list
    other = Store(world.root, "other-api", world.clock)
    Lock(other).take("o1", "bob", "deploy", "v1.0.0", 120.0, {})

    deploy_all(world, VERSIONS[3:])

    assert "v1.0.0" in tags(world)
    assert "v2.0.0" not in tags(world)


def test_stray_stopped_containers_of_the_service_go_but_never_the_kept_colour(world: World) -> None:
    deploy_all(world, VERSIONS[:2])
    kept = world.docker.boxes[f"{SERVICE}-blue"]  # a replica left from a release that ran two
    world.docker.boxes[f"{SERVICE}-blue-2"] = dataclasses.replace(kept, name=f"{SERVICE}-blue-2", ip="172.18.2.17")
    deploy_all(world, ["v3.0.0"])

    assert f"{SERVICE}-blue-2" not in world.docker.names()  # a replica no kept release runs
    assert {f"{SERVICE}-blue", f"{SERVICE}-green"} <= world.docker.names()


def test_a_failing_prune_leaves_the_release_live_and_says_so(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(service: str) -> dict[str, bool]:
        raise DockerError("`docker ps` failed: the engine is busy")

    deploy_all(world, VERSIONS[:1])
    monkeypatch.setattr(world.docker, "containers", broken)
    world.image("v2.0.0")

    answer = world.deploy("v2.0.0", "r2")

    assert answer["result"] == "deployed"
    assert "pruning older releases failed (`docker ps` failed: the engine is busy); the release is live" in (
        answer["message"])
    assert world.serves() == "v2.0.0"


def test_a_rollback_after_pruning_still_has_its_image(world: World) -> None:
    deploy_all(world, VERSIONS)
    answer = recovery.rollback(world.host, world.store(), world.run("r9"), world.spec("v5.0.0"), 120.0)

    assert answer["result"] == "deployed", answer
    assert world.serves() == "v4.0.0"
    assert [r["version"] for r in world.state()["releases"]][:2] == ["v4.0.0", "v5.0.0"]


def test_remember_puts_the_new_release_first_once_and_cuts() -> None:
    old = [{"version": "v2", "image_id": "b"}, {"version": "v1", "image_id": "a"}]
    assert releases.remember(old, {"version": "v1", "image_id": "a"}, 3) == [
        {"version": "v1", "image_id": "a"}, {"version": "v2", "image_id": "b"}]
    assert releases.remember(None, {"version": "v3", "image_id": "c"}, 2) == [{"version": "v3", "image_id": "c"}]
    assert len(releases.remember(old, {"version": "v3", "image_id": "c"}, 2)) == 2


@pytest.mark.parametrize("value", [0, 1, 21, "3", True, None])
def test_keep_releases_outside_the_rule_is_refused(value: object) -> None:
    with pytest.raises(contract.InputRefused, match="keep_releases"):
        release_rules.check_keep_releases(value)


def test_a_host_recorded_before_the_list_starts_it_from_its_live_and_kept_releases(world: World) -> None:
    deploy_all(world, VERSIONS[:3])
    path = Path(world.store().paths.state)
    raw = json.loads(path.read_text())
    del raw["releases"]  # as on a host upgraded from before the list
    path.write_text(json.dumps(raw))

    deploy_all(world, VERSIONS[3:4])

    assert [r["version"] for r in world.state()["releases"]] == ["v4.0.0", "v3.0.0", "v2.0.0"]
    assert "v2.0.0" in tags(world)
