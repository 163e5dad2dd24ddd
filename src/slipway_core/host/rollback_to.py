"""`rollback --to VERSION`: back to a release kept on this host other than the kept one (releases.py keeps the images
of the last few). It runs as a deploy of that release's image without its migration: the schema stays where it
is, so the database's Alembic revision must descend from the release's head (migrations are expand/contract: an
older release runs against newer, additive revisions). The newer revisions are named in the result; a database
whose revision does not descend from that head is refused before anything starts, and so is a version that is not
kept here (its image pruned: deploy it instead, which loads or pulls it)."""

from __future__ import annotations

from typing import Any

from slipway_core import contract
from slipway_core.host import prepare, recovery
from slipway_core.host.lock import Lock
from slipway_core.host.release import Host, config_hash, public
from slipway_core.host.releases import head_of
from slipway_core.host.run import Failed, Run
from slipway_core.host.steps import Rollout
from slipway_core.host.store import Store

STEPS = ["start", "health", "switch", "drain", "record"]


def rollback_to(
    host: Host, store: Store, run: Run, spec: dict[str, Any], stale_after: float, *, version: str,
    begin_only: bool = False,
) -> dict[str, Any]:
    """`begin_only` (the cluster rollback): up to the schema check, then answer what is left (`todo`)."""
    state = store.state()
    live, kept = state.get("live") or {}, state.get("kept") or {}
    if version == kept.get("version") and kept.get("image_id") != live.get("image_id"):
        # the kept containers: a plain rollback
        return recovery.rollback(host, store, run, spec, stale_after, begin_only=begin_only)
    run.data.update({"action": "rollback", "to_release": True, "version": version})
    with run.phase("lock"):
        Lock(store).take(run.run_id, host.who, "rollback", version, stale_after, host.audit)
    if version == live.get("version"):
        Lock(store).release(run.run_id)
        return run.answer("noop", colour=live.get("colour", ""), previous_version=live.get("version", ""), todo=[],
                          message=f"{version} is already live on {live.get('colour')}")
    with run.phase("skip-check"):
        target = release_kept(store, state, version)
        if host.docker.image_id(str(target["image"])) != target.get("image_id"):
            raise Failed("image", f"the image of {version} ({target['image']}) is no longer on this host; deploy it "
                                  f"instead: slipway deploy --service {store.service} --version {version}")
    wanted = {**spec, "version": version, "image_ref": str(target["image"])}
    with run.phase("migrate"):
        note = schema_check(host, store, run, wanted, live=live, target=target)
    rollout = Rollout(host, store, run, wanted)
    with run.phase("start"):
        rollout.check_edge_servers("start")
    run.data.update({
        "previous_version": live.get("version", ""),
        "colour": contract.other_colour(live["colour"]) if live.get("colour") else "blue",
        "image": wanted["image_ref"],
        "config_hash": config_hash(wanted),
        "release": public(wanted),
        "todo": list(STEPS),
        "done": [],
        "reason": f"rollback to the kept release {version}",
        "alembic_head": head_of(target),
        "note": note,
    })
    if begin_only:
        return run.answer(contract.CONTINUE)
    run.save()
    return rollout.advance(list(STEPS))


def release_kept(store: Store, state: dict[str, Any], version: str) -> dict[str, Any]:
    """The kept release of `version`, or Failed naming the ones kept."""
    kept = [r for r in state.get("releases") or [] if isinstance(r, dict)]
    for release in kept:
        if release.get("version") == version and release.get("image"):
            return release
    names = ", ".join(str(r.get("version")) for r in kept) or "none"
    raise Failed("preflight", f"{version} is not among the releases of {store.service} kept on this host ({names}); "
                              f"deploy it instead: slipway deploy --service {store.service} --version {version}")


def schema_check(
    host: Host, store: Store, run: Run, spec: dict[str, Any], *, live: dict[str, Any], target: dict[str, Any]
) -> str:
    """'' or a note naming the newer revisions the release runs against; Failed when the database's revision does not
    descend from the release's head. Asks Alembic in the live image, which knows every revision up to the
    database's."""
    asked = {**spec, "image_ref": live.get("image") or spec["image_ref"]}
    head = head_of(target)
    # With the data host elsewhere, the live image's Alembic reads it over the network (it knows every revision).
    current = prepare.schema_revision(host.docker, store.service, asked, run.run_id) if head else None
    if not head or not current or head == current:
        return ""
    command = list(spec.get("migrate_command") or [])
    if not command or command[0] != "alembic":
        return f"; the database is at {current}, {spec['version']} was at {head} (not checked: not Alembic)"
    name = contract.migration_container_name(store.service, run.run_id)
    code, output, problem = prepare.migration_tool(host.docker, store.service, asked, name,
                                                   ["alembic", "history", "-r", f"{head}:{current}"])
    if code != 0:
        raise Failed(
            "migrate",
            f"the database is at revision {current}, which does not descend from {head} (the head of "
            f"{spec['version']}): that release would run against a schema it does not know. Nothing was started; "
            f"deploy a release instead. Alembic said: {(problem or output)[-300:]}",
        )
    newer = [line.split("->", 1)[1].split()[0].rstrip(",") for line in output.splitlines() if "->" in line]
    newer = [rev for rev in newer if rev != head]
    return f"; it runs against the newer revisions {', '.join(newer)} (expand/contract)" if newer else ""
