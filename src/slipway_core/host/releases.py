"""Releases kept on a host, and the prune after a successful rollout.

state.json's `releases` lists a service's last releases, newest (the live one) first, at most `keep_releases`
(default 3). Their images stay; after a rollout succeeds, everything older of the service goes: its stopped
containers that are neither the live nor the kept colour's, the tags of its repository whose release was once
live here (its history names them; a failed release's image and one loaded for a later deploy are left alone) and
that no kept release of ANY
service on this host uses (two services may share a repository) and no run in progress is deploying, then the
engine's dangling images (never one a container, stopped or not, still uses). A prune that fails leaves the release
live and says so in the result's message.
"""

from __future__ import annotations

from typing import Any

from slipway_core import contract, release_rules, worker_rules
from slipway_core.host.docker import Docker, DockerError
from slipway_core.host.lock import Lock
from slipway_core.host.store import Store, services

# History results whose release was live here: only such images are ever pruned (a failed release's image stays for a
# retry, and one loaded for a later deploy is never touched).
WAS_LIVE = ("deployed", "rolled-back")


def remember(releases: Any, new: dict[str, Any], keep: int) -> list[dict[str, Any]]:
    """`new` first, then the older releases (each version and image once), at most `keep`."""
    older = [
        r for r in (releases if isinstance(releases, list) else [])
        if isinstance(r, dict) and (r.get("version"), r.get("image_id")) != (new.get("version"), new.get("image_id"))
    ]
    return [new, *older][:keep]


def recorded(state: dict[str, Any], image_id: str | None) -> dict[str, Any] | None:
    """The release kept here (live, kept, or in the list) that runs `image_id`, or None."""
    if not image_id:
        return None
    for release in [state.get("live"), state.get("kept"), *(state.get("releases") or [])]:
        if isinstance(release, dict) and release.get("image_id") == image_id:
            return release
    return None


def head_of(release: dict[str, Any]) -> Any:
    """A release's own Alembic head (recorded since `rollback --to`; before, the revision it was live at)."""
    return release.get("alembic_head") or release.get("migration_revision")


def kept_images(root: str, clock: Any) -> tuple[set[str], set[str]]:
    """(image ids every service's kept releases use, versions some run on this host is deploying now)."""
    ids: set[str] = set()
    deploying: set[str] = set()
    for service in services(root):
        store = Store(root, service, clock)
        state = store.state()
        for release in [state.get("live"), state.get("kept"), *(state.get("releases") or [])]:
            if isinstance(release, dict) and release.get("image_id"):
                ids.add(str(release["image_id"]))
        held = Lock(store).held()
        if held and held.get("version"):
            deploying.add(str(held["version"]))
    return ids, deploying


def colour_names(service: str, release: Any) -> list[str]:
    """A release's containers: its web replicas and its workers."""
    if not isinstance(release, dict) or release.get("colour") not in contract.COLOURS:
        return []
    return [*contract.colour_containers(service, release["colour"], release_rules.replicas_of(release)),
            *(name for _, _, name in worker_rules.containers(service, release["colour"],
                                                             worker_rules.workers_of(release)))]


def prune(docker: Docker, store: Store, repository: str, root: str) -> dict[str, list[str]]:
    """Remove what no kept release needs (see the module's text); returns what went."""
    state = store.state()
    keep_names = set(colour_names(store.service, state.get("live")) + colour_names(store.service, state.get("kept")))
    containers = [name for name, up in sorted(docker.containers(store.service).items())
                  if not up and name not in keep_names]
    for name in containers:
        docker.remove(name)
    ids, deploying = kept_images(root, store.clock)
    released = {str(line.get("image")) for line in store.history(0, everything=True)
                if line.get("image") and line.get("result") in WAS_LIVE}
    images = [ref for ref, ident in sorted(docker.tags(repository).items())
              if ref in released and ident not in ids and ref.rpartition(":")[2] not in deploying
              and docker.remove_image(ref)]
    docker.prune_dangling()
    return {"containers": containers, "images": images}


def prune_note(docker: Docker, store: Store, repository: str, root: str) -> str:
    """prune(), as a note for the result's message ('' when nothing went)."""
    try:
        gone = prune(docker, store, repository, root)
    except (DockerError, OSError, ValueError) as err:
        return f"; pruning older releases failed ({err}); the release is live"
    parts = [f"{len(gone[k])} {k if len(gone[k]) > 1 else k[:-1]}" for k in ("images", "containers") if gone[k]]
    return f"; pruned {' and '.join(parts)} of older releases" if parts else ""
