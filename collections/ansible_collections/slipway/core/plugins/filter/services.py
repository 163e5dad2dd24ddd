"""The services registry (`slipway_services`): validation and normalisation shared by every role.

A role never reads `slipway_services` directly; it calls `slipway_services | slipway.core.services` and gets a
list of entries with every field present, so defaults live in this one place. The naming rules (service name,
image tag) and every derived name (database, roles, secret variables, proxy backend, containers) are the
contract's (slipway_core.contract, shared with the CLI and the host program).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.slipway.core.plugins.plugin_utils.core import (
    load_contract,
    load_job_rules,
    load_release_rules,
    load_worker_rules,
)

DOCUMENTATION = """
name: services
short_description: Validate and normalise the Slipway services registry
description:
  - Takes the C(slipway_services) map and returns a list of service entries, sorted by name, with defaults
    filled in and derived names (identifier, database, roles, secret variable names) added.
  - Raises an error naming the service and field when an entry is invalid.
options:
  _input:
    description: The services map (service name -> settings).
    type: dict
    required: true
"""

IMAGE_RE = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")
DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
PATH_RE = re.compile(r"^/[A-Za-z0-9._~/-]*$")
MEMORY_RE = re.compile(r"^[0-9]+[bkmg]$")
CPUS_RE = re.compile(r"^[0-9]+(\.[0-9]+)?$")
ENV_NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")

KNOWN_FIELDS = frozenset(
    {
        "image",
        "version",
        "port",
        "domain",
        "health_path",
        "migrate_command",
        "postgres",
        "redis",
        "resources",
        "env",
        "secret_env",
        "replicas",
        "jobs",
        "workers",
    }
)
DEFAULT_RESOURCES = {"cpus": "0.5", "memory": "512m"}


def _fail(name: str, field: str, problem: str) -> AnsibleFilterError:
    return AnsibleFilterError(f"slipway_services['{name}'].{field}: {problem}")


def _str_field(name: str, spec: Mapping[str, Any], field: str, pattern: re.Pattern[str], hint: str) -> str:
    value = spec.get(field)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise _fail(name, field, f"{value!r} is not valid; {hint}")
    return value


def _bool_field(name: str, spec: Mapping[str, Any], field: str) -> bool:
    value = spec.get(field, False)
    if not isinstance(value, bool):
        raise _fail(name, field, f"{value!r} is not valid; use true or false")
    return value


def _env_field(name: str, spec: Mapping[str, Any], field: str) -> dict[str, str]:
    value = spec.get(field) or {}
    if not isinstance(value, Mapping):
        raise _fail(name, field, "must be a map of VARIABLE: value")
    for key in value:
        if not isinstance(key, str) or not ENV_NAME_RE.fullmatch(key):
            raise _fail(name, field, f"{key!r} is not a valid variable name; use upper case, digits and _")
    return {str(k): str(v) for k, v in value.items()}


def _jobs_field(name: str, spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """`jobs:` (scheduled jobs, docs/services.md): checked by the job rules, schedules by systemd-analyze when the
    controller has it; an error names the service, the job and its field."""
    job_rules = load_job_rules()
    try:
        jobs: list[dict[str, Any]] = job_rules.check_jobs(spec.get("jobs"), analyze=True)
    except load_contract().InputRefused as err:
        raise _fail(name, "jobs", str(err)) from err
    return jobs


def _check_job_units(entries: list[dict[str, Any]]) -> None:
    """Two services' jobs may not share systemd units (`a` + `b-c` and `a-b` + `c`)."""
    job_rules = load_job_rules()
    units: dict[str, str] = {}
    for entry in entries:
        for job in entry["jobs"]:
            unit = job_rules.unit_name(entry["name"], job["name"])
            other = units.setdefault(unit, f"{entry['name']}'s job {job['name']}")
            if other != f"{entry['name']}'s job {job['name']}":
                raise _fail(entry["name"], f"jobs.{job['name']}",
                            f"its systemd unit {unit} is also the unit of {other}; rename one of the two jobs")


def _workers(name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """The service's `workers:` normalised by the shared rules; an error names the worker's field and the fix."""
    worker_rules = load_worker_rules()
    try:
        workers: dict[str, Any] = worker_rules.check_workers(spec.get("workers"))
    except worker_rules.WorkerRefused as err:
        raise _fail(name, err.field, str(err)) from err
    return workers


def _web(name: str, spec: Mapping[str, Any], workers: Mapping[str, Any]) -> bool:
    """Whether the service has the routed web process: `port` and `domain` both, or neither for a worker-only
    service, which needs at least one worker and takes no web setting."""
    given = [field for field in ("port", "domain") if spec.get(field) is not None]
    if len(given) == 2:
        return True
    if given:
        other = "domain" if given == ["port"] else "port"
        raise _fail(name, other, f"missing: a service with a {given[0]} is routed by the edge and needs a {other} too; "
                                 f"give both, or neither for a worker-only service (workers: only)")
    if not workers:
        raise _fail(name, "port", "missing: give the web process's port and domain, or at least one worker under "
                                  "workers: for a worker-only service")
    for field in ("health_path", "replicas"):
        if field in spec:
            raise _fail(name, field, "a worker-only service (no port, no domain) has no web process to set this for; "
                                     "remove it (each worker has its own replicas)")
    return False


def service_id(name: Any) -> str:
    """The identifier form of a service name: `lark-service` -> `lark_service` (databases, roles, variables)."""
    contract = load_contract()
    try:
        sid: str = contract.service_id(name)
    except contract.InputRefused as err:
        raise AnsibleFilterError(f"slipway_services: {err}") from err
    return sid


def normalise(name: str, spec: Any) -> dict[str, Any]:
    """One registry entry, validated, with defaults and derived names."""
    contract = load_contract()
    service_id(name)
    if not isinstance(spec, Mapping):
        raise AnsibleFilterError(f"slipway_services['{name}']: must be a map of settings, got {type(spec).__name__}")
    unknown = sorted(set(spec) - KNOWN_FIELDS)
    if unknown:
        raise _fail(name, unknown[0], f"unknown field; known fields are {', '.join(sorted(KNOWN_FIELDS))}")
    image = _str_field(
        name, spec, "image", IMAGE_RE, "use a repository without a tag, e.g. registry.example.com/team/app"
    )
    try:
        version: str = contract.check_image_tag(spec.get("version"))
    except contract.InputRefused as err:
        raise _fail(name, "version", str(err)) from err
    workers = _workers(name, spec)
    web = _web(name, spec, workers)
    if web:
        port = spec.get("port")
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise _fail(name, "port", f"{port!r} is not valid; use the container port, 1-65535")
        domain = _str_field(name, spec, "domain", DOMAIN_RE, "use a lower-case host name such as app.example.com")
        health_path = spec.get("health_path", "/health")
        if not isinstance(health_path, str) or not PATH_RE.fullmatch(health_path):
            raise _fail(name, "health_path", f"{health_path!r} is not valid; use a path such as /health")
    migrate = spec.get("migrate_command") or []
    if not isinstance(migrate, list) or not all(isinstance(arg, str) and arg for arg in migrate):
        raise _fail(name, "migrate_command", "must be a list of strings, e.g. [alembic, upgrade, head]")
    resources = {**DEFAULT_RESOURCES, **(spec.get("resources") or {})}
    if not CPUS_RE.fullmatch(str(resources["cpus"])):
        raise _fail(name, "resources.cpus", f"{resources['cpus']!r} is not valid; use a number such as \"0.5\"")
    if not MEMORY_RE.fullmatch(str(resources["memory"])):
        raise _fail(name, "resources.memory", f"{resources['memory']!r} is not valid; use a size such as 512m")
    release_rules = load_release_rules()
    try:
        replicas: int = release_rules.check_replicas(spec.get("replicas", 1)) if web else 0
    except contract.InputRefused as err:
        raise _fail(name, "replicas", str(err)) from err
    return {
        "name": name,
        "image": image,
        "version": version,
        "image_ref": f"{image}:{version}",
        # False for a worker-only service: no port, domain or health path, no edge backend, no web colour.
        "web": web,
        **({"port": port, "domain": domain, "health_path": health_path} if web else
           {"port": None, "domain": "", "health_path": ""}),
        "migrate_command": list(migrate),
        "postgres": _bool_field(name, spec, "postgres"),
        "redis": _bool_field(name, spec, "redis"),
        "resources": {"cpus": str(resources["cpus"]), "memory": str(resources["memory"])},
        "env": _env_field(name, spec, "env"),
        # The names only: an entry is a loop item of many tasks, and Ansible writes a loop's items into its events
        # (ansible-runner's artifacts, a callback's output) whatever the label shows. The values come from
        # `slipway_services | slipway.core.secret_env(name)`, inside a no_log task only.
        "secret_env_names": sorted(_env_field(name, spec, "secret_env")),
        "replicas": replicas,
        "jobs": _jobs_field(name, spec),
        # The edge's servers of each colour, one per replica (name, and the variable enabling it after a reload).
        "servers": release_rules.edge_servers(name, replicas) if web else {"blue": [], "green": []},
        # Processes other than the web one (slipway_core.worker_rules): name -> settings, every field present.
        "workers": workers,
        # Derived names (id, db_name, db_owner, db_user, redis_user, redis_key_prefix, the vault_* variable names,
        # backend, live_env_var, blue, green): every role uses these, never builds its own.
        **contract.service_names(name),
    }


def services(registry: Any) -> list[dict[str, Any]]:
    """`slipway_services | slipway.core.services`: the whole registry, validated, sorted by name."""
    if registry is None:
        return []
    if not isinstance(registry, Mapping):
        raise AnsibleFilterError(
            f"slipway_services must be a map of service name -> settings, got {type(registry).__name__}"
        )
    entries = [normalise(str(name), spec) for name, spec in registry.items()]
    domains: dict[str, str] = {}
    for entry in (e for e in entries if e["web"]):
        other = domains.setdefault(entry["domain"], entry["name"])
        if other != entry["name"]:
            raise _fail(
                entry["name"], "domain", f"{entry['domain']} is already routed to {other}; each service needs its own"
            )
    _check_job_units(entries)
    return sorted(entries, key=lambda e: e["name"])


def selected(entries: Any, service: Any = "", version: Any = "") -> list[dict[str, Any]]:
    """`entries | slipway.core.selected(service, version)`: the entries one rollout covers (all of them when no
    service is named). Raises an error naming the problem for an unknown service or a version without one, so
    the check costs no task of its own (the rollout's speed targets count every task)."""
    contract = load_contract()
    names = [entry["name"] for entry in entries or []]
    try:  # the roles pass "" for "not given"; the version's own rule is preflight's (this takes any tag)
        contract.check_version_needs_service(service or None, version or None, names)
        if service:
            contract.check_known_service(service, names, "slipway_services")
    except contract.InputRefused as err:
        raise AnsibleFilterError(str(err)) from err
    if not service:
        return list(entries or [])
    return [entry for entry in entries if entry["name"] == service]


def secret_env(registry: Any, name: str) -> dict[str, str]:
    """`slipway_services | slipway.core.secret_env(name)`: the service's secret_env, checked as `services` checks it.

    The one way to a service's secret values (the entries of `services` carry their names only); used where a task
    with no_log hands the release to the host.
    """
    if not isinstance(registry, Mapping) or not isinstance(registry.get(name), Mapping):
        raise AnsibleFilterError(f"secret_env: {name!r} is not a service of slipway_services")
    return _env_field(name, registry[name], "secret_env")


class FilterModule:
    """Filters of the services registry."""

    def filters(self) -> dict[str, Any]:
        return {"services": services, "service_id": service_id, "selected": selected, "secret_env": secret_env}
