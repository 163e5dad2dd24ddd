"""The rules of a service's releases on a host: replicas per colour (and the edge's server for each), and how many
releases keep their images there. Shared by the CLI's registry filter, the edge_proxy role and the host program
(shipped in its zipapp beside the contract). Standard library only, Python 3.8+."""

from __future__ import annotations

from typing import Any, Mapping

from .contract import COLOURS, MAX_REPLICAS, InputRefused, container_name, live_env_var, shown

REPLICAS_RULE = f"give the containers per colour as a whole number from 1 to {MAX_REPLICAS}"

KEEP_RELEASES_DEFAULT = 3
KEEP_RELEASES_MAX = 20
KEEP_RELEASES_RULE = (f"give how many releases per service keep their images on a host, 2 to {KEEP_RELEASES_MAX} (the "
                      "live one and the one a rollback returns to at least)")


def check_keep_releases(value: Any) -> int:
    """How many releases per service keep their images (the live one first); older ones are pruned."""
    if isinstance(value, bool) or not isinstance(value, int) or not 2 <= value <= KEEP_RELEASES_MAX:
        raise InputRefused(f"keep_releases {shown(value)} is not valid; {KEEP_RELEASES_RULE}")
    return value


def check_replicas(value: Any) -> int:
    """A service's containers per colour (the registry's `replicas`, default 1)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_REPLICAS:
        raise InputRefused(f"replicas {shown(value)} is not valid; {REPLICAS_RULE}")
    return value


def replicas_of(release: Mapping[str, Any] | None) -> int:
    """The web containers per colour of a release or a spec (1 when it says none: recorded before replicas existed;
    0 for a worker-only service, which has no web process)."""
    value = (release or {}).get("replicas")
    return 1 if value is None or value == "" else int(value)


def has_web(release: Mapping[str, Any] | None) -> bool:
    """Whether a release (or spec) has the routed web process: a worker-only service's has none (replicas 0, no
    port, no domain, no edge backend)."""
    return replicas_of(release) > 0


def replica_env_var(service: str, replica: int) -> str:
    """Defined in live/<service>.cfg while replica `replica` (1 and up; the first always serves) of the live colour
    serves: the edge's configuration enables that server from it after a reload."""
    return f"{live_env_var(service)}_R{replica + 1}"


def edge_servers(service: str, replicas: int) -> dict[str, list[dict[str, str]]]:
    """The edge's servers of each colour: one per replica, with the environment variable that enables it after a
    reload (empty for the first: it serves whenever its colour is live)."""
    return {
        colour: [
            {"name": container_name(service, colour, r), "enabled_by": replica_env_var(service, r) if r else ""}
            for r in range(check_replicas(replicas))
        ]
        for colour in COLOURS
    }
