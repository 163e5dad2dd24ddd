"""Releases kept and pruned on a real host (issue 15): jotter and notes-api share the image repository
slipway/notes-api. With app_release_keep_releases=2, two jotter rollouts keep exactly two jotter releases; the
tag that was once live for jotter and that no service keeps goes, the ones notes-api keeps stay, and so do the
images of failed releases (a retry needs them). Then `rollback --to` an older kept release of notes-api, with
Alembic's check of the schema."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scenario_tools import RunPlaybook

PLAYBOOKS = Path(__file__).resolve().parents[3] / "playbooks"
REPOSITORY = "slipway/notes-api"
# The prunes below remove tags of releases no service keeps, as they should; a user's host pulls such a release again
# from the registry. This scenario has none, so every test image is also tagged in this repository (the prune reads
# only the services' own), and a test puts a version's tag back before it deploys it (and at the end, for the
# scenario's later tests).
KEEPER = "slipway/test-keep"


def tags(host: Any, repository: str = REPOSITORY) -> set[str]:
    out = host.check_output(f"docker images --format '{{{{.Tag}}}}' {repository}")
    return set(out.split())


def put_back(host: Any, *versions: str) -> None:
    """The test images' tags `versions` (all kept ones when none are named), as a registry would give them back."""
    for version in versions or sorted(tags(host, KEEPER)):
        host.run_expect([0], f"docker tag {KEEPER}:{version} {REPOSITORY}:{version}")


@pytest.fixture(scope="module", autouse=True)
def keeper(host: Any) -> Iterator[None]:
    for version in tags(host):
        host.run_expect([0], f"docker tag {REPOSITORY}:{version} {KEEPER}:{version}")
    yield
    put_back(host)
    host.run_expect([0], f"docker images --format '{{{{.Repository}}}}:{{{{.Tag}}}}' {KEEPER} | xargs -r docker rmi")


def deploy(run_playbook: RunPlaybook, version: str) -> str:
    # The confirm through the edge asks only for a 200 on the health path: v0.9.0-kept is another name for an image
    # that answers its own version.
    result: subprocess.CompletedProcess[str] = run_playbook(
        PLAYBOOKS / "deploy.yml", "-e", "env=local", "-e", "service=jotter", "-e", f"version={version}",
        extra_vars={"app_release_keep_releases": 2, "app_release_confirm_path": ""})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return output


def state(host: Any, service: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(host.check_output(f"cat /var/lib/slipway/services/{service}/state.json"))
    return found


def once_live(host: Any, service: str) -> set[str]:
    lines = host.check_output(f"cat /var/lib/slipway/services/{service}/history.jsonl").splitlines()
    return {json.loads(line)["version"] for line in lines if json.loads(line)["result"] in ("deployed", "rolled-back")}


def test_two_rollouts_keep_two_releases_and_prune_the_rest(host: Any, run_playbook: RunPlaybook) -> None:
    start = state(host, "jotter")
    live, kept = start["live"]["version"], start["kept"]["version"]
    # A third name for the kept release's image (its migrations ran here: no rollout below migrates).
    host.run_expect([0], f"docker tag {REPOSITORY}:{kept} {REPOSITORY}:v0.9.0-kept")
    before = tags(host)

    deploy(run_playbook, "v0.9.0-kept")  # live v0.9.0-kept, kept {live}: {kept} drops out of two
    deploy(run_playbook, kept)  # live {kept}, kept v0.9.0-kept: {live} drops out

    jotter, notes = state(host, "jotter"), state(host, "notes-api")
    assert [r["version"] for r in jotter["releases"]] == [kept, "v0.9.0-kept"]
    protected = {r["image"].rpartition(":")[2] for s in (jotter, notes)
                 for r in [s["live"], s["kept"], *(s.get("releases") or [])] if r}
    after = tags(host)
    gone = before - after
    if live not in protected:  # notes-api may keep the same tag
        assert gone == {live}, (before, after)
    assert gone <= once_live(host, "jotter") - protected
    assert protected <= after  # every release any service keeps still has its image
    failed_only = {t for t in before if "bad" in t}
    assert failed_only and failed_only <= after  # never live: left for a retry
    containers = host.check_output("docker ps -a --filter label=slipway.service=jotter --format '{{.Names}}'").split()
    assert sorted(containers) == ["jotter-blue", "jotter-green"]


def notes(run_playbook: RunPlaybook, playbook: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_playbook(PLAYBOOKS / playbook, "-e", "env=local", "-e", "service=notes-api", *extra)


def alembic_version(host: Any, value: str = "") -> str:
    """The notes_api database's Alembic revision (set first when `value`, letters and digits, is given)."""
    psql = "docker exec -u postgres postgres psql -X -qtAd notes_api -c"
    if value:
        assert value.isalnum()
        host.run_expect([0], f"{psql} \"UPDATE alembic_version SET version_num = '{value}'\"")  # noqa: S608
    out: str = host.check_output(psql + ' "SELECT version_num FROM alembic_version"')  # noqa: S608 - a constant
    return out.strip()


def test_rollback_to_an_older_kept_release_checks_the_schema_with_alembic(
    host: Any, run_playbook: RunPlaybook
) -> None:
    # Three releases live in turn: v1.0.0 (head 0001) ends up kept by the list only, behind v2.0.0 (kept) and
    # v2.0.0-slow (live, head 0002).
    for version in ("v1.0.0", "v2.0.0", "v2.0.0-slow"):
        put_back(host, version)  # an earlier prune may have taken it (a registry would give it back)
        result = notes(run_playbook, "deploy.yml", "-e", f"version={version}")
        assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert [r["version"] for r in state(host, "notes-api")["releases"]][:3] == ["v2.0.0-slow", "v2.0.0", "v1.0.0"]
    assert alembic_version(host) == "0002"

    # A database whose revision does not descend from v1.0.0's head: refused before anything starts.
    alembic_version(host, "ffff0000")
    try:
        refused = notes(run_playbook, "rollback.yml", "-e", "version=v1.0.0")
    finally:
        alembic_version(host, "0002")
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0, output[-3000:]
    assert "the database is at revision ffff0000, which does not descend from 0001 (the head of v1.0.0)" in output
    assert state(host, "notes-api")["live"]["version"] == "v2.0.0-slow"

    result = notes(run_playbook, "rollback.yml", "-e", "version=v1.0.0")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    live = state(host, "notes-api")["live"]
    assert (live["version"], live["alembic_head"]) == ("v1.0.0", "0001")
    assert alembic_version(host) == "0002"  # no migration ran: v1.0.0 runs against the newer (additive) schema
    history = host.check_output("tail -1 /var/lib/slipway/services/notes-api/history.jsonl")
    assert json.loads(history)["result"] == "rolled-back"
    get = ("import urllib.request as u; "
           "r = u.Request('http://127.0.0.1/version', headers={'Host': 'notes.localhost'}); "
           "print(u.urlopen(r, timeout=10).read().decode())")
    assert json.loads(host.check_output(f'python3 -c "{get}"'))["version"] == "v1.0.0"
