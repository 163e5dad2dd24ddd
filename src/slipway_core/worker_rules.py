"""The rules of a service's workers: processes other than the web one (a queue consumer, a long-connection bot),
released with the same image, environment and secrets, each with its own command. The registry's `workers:` map
(the services filter), the release the host program is given (host/release.py) and the host's worker containers
(host/workers.py) all read them here. Standard library only, Python 3.8+ (shipped in the host zipapp).

A worker's containers per colour: `<service>-<colour>-<worker>`, then `-2`, `-3`, ... for its other replicas.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping

from .contract import MAX_REPLICAS, SERVICE_RE, SERVICE_RULE, InputRefused, container_name, shown

FIELDS = ("command", "replicas", "stop_timeout", "health_command", "ready_after")
STOP_TIMEOUT_DEFAULT = 30
STOP_TIMEOUT_MAX = 3600
READY_AFTER_DEFAULT = 5
READY_AFTER_MAX = 600

RULES = {
    "name": f"name a worker like a service: {SERVICE_RULE}, and not ending in '-kept'",
    "command": "give the worker's command as a non-empty list of strings, e.g. [python, -m, notes_api.worker]",
    "replicas": f"give the worker's containers per colour as a whole number from 1 to {MAX_REPLICAS}",
    "stop_timeout": (f"give the seconds a worker has to finish its job after SIGTERM as a whole number from 1 to "
                     f"{STOP_TIMEOUT_MAX} (default {STOP_TIMEOUT_DEFAULT})"),
    "health_command": ("give a command as a non-empty list of strings (run with docker exec; exit 0 = ready), or "
                       "leave it out: the worker is ready when it still runs after ready_after seconds"),
    "ready_after": (f"give the seconds a worker without health_command must keep running to pass its gate, a whole "
                    f"number from 1 to {READY_AFTER_MAX} (default {READY_AFTER_DEFAULT})"),
}

Worker = Dict[str, Any]  # a runtime alias: Python 3.8 has no dict[...]


class WorkerRefused(InputRefused):
    """A worker's setting broke a rule: `field` is where (workers.<name>.<field>), the message what to change."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _number(name: str, spec: Mapping[str, Any], field: str, default: int, top: int) -> int:
    value = spec.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
        raise WorkerRefused(f"workers.{name}.{field}", f"{shown(value)} is not valid; {RULES[field]}")
    return value


def _argv(name: str, spec: Mapping[str, Any], field: str) -> list[str]:
    value = spec.get(field)
    if not isinstance(value, list) or not value or not all(isinstance(arg, str) and arg for arg in value):
        raise WorkerRefused(f"workers.{name}.{field}", f"{shown(value)} is not valid; {RULES[field]}")
    return list(value)


def check_worker(name: Any, spec: Any) -> Worker:
    """One worker, normalised (every field present), or WorkerRefused naming the field and the fix."""
    if not isinstance(name, str) or not SERVICE_RE.fullmatch(name) or name == "kept" or name.endswith("-kept"):
        raise WorkerRefused(f"workers.{name}", f"{shown(name)} is not a worker name; {RULES['name']}")
    if not isinstance(spec, Mapping):
        raise WorkerRefused(f"workers.{name}", f"must be a map of settings ({', '.join(FIELDS)}), got {shown(spec)}")
    unknown = sorted(str(key) for key in spec if key not in FIELDS)
    if unknown:
        raise WorkerRefused(f"workers.{name}.{unknown[0]}", f"unknown field; known fields are {', '.join(FIELDS)}")
    return {
        "command": _argv(name, spec, "command"),
        "replicas": _number(name, spec, "replicas", 1, MAX_REPLICAS),
        "stop_timeout": _number(name, spec, "stop_timeout", STOP_TIMEOUT_DEFAULT, STOP_TIMEOUT_MAX),
        # None or [] (what normalising leaves): no health command.
        "health_command": _argv(name, spec, "health_command") if spec.get("health_command") not in (None, []) else [],
        "ready_after": _number(name, spec, "ready_after", READY_AFTER_DEFAULT, READY_AFTER_MAX),
    }


def check_workers(value: Any) -> dict[str, Worker]:
    """A service's `workers:` map (none: {}), normalised and sorted by name; WorkerRefused for a bad one, or for two
    workers whose containers would share a name (`mail` with 2 replicas and `mail-2`)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise WorkerRefused("workers", f"{shown(value)} is not valid; give a map of worker name -> settings "
                                       "({command: [...], replicas: 1, ...})")
    workers = {str(name): check_worker(name, value[name]) for name in sorted(value, key=str)}
    seen: dict[str, str] = {}
    for worker, _, name in containers("s", "blue", workers):
        other = seen.setdefault(name, worker)
        if other != worker:
            raise WorkerRefused(f"workers.{worker}", f"its containers' names clash with worker {other}'s "
                                                     f"({name[len('s-blue-'):]}); rename one of them")
    return workers


def container(service: str, colour: str, worker: str, replica: int = 0) -> str:
    """One worker container of a colour: `<service>-<colour>-<worker>`, then -2, -3, ..."""
    return f"{container_name(service, colour)}-{worker}" + (f"-{replica + 1}" if replica else "")


def containers(service: str, colour: str, workers: Mapping[str, Worker] | None) -> list[tuple[str, int, str]]:
    """(worker, replica, container name) of every worker container of a colour, in order."""
    return [(worker, replica, container(service, colour, worker, replica))
            for worker in sorted(workers or {})
            for replica in range(int((workers or {})[worker].get("replicas") or 1))]


def workers_of(release: Mapping[str, Any] | None) -> dict[str, Worker]:
    """The workers of a release or a spec ({} when it has none: recorded before workers existed)."""
    found = (release or {}).get("workers")
    return dict(found) if isinstance(found, Mapping) else {}
