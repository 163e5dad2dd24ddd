"""Slipway's contract: every input rule with its message, the rollout's phases and steps, the result schema and
every derived name.

Imported by the CLI (src/slipway), the collection's plugins (slipway.core) and the host program (the host package
beside this module, shipped to hosts as one zipapp). Nothing else defines an input rule or builds a container,
backend, backup or state-file name: change a rule here and every entry point follows.

Standard library only, Python 3.8+ (hosts run their own python3; `make lint` checks this file with vermin).
"""

from __future__ import annotations

import ipaddress
import os
import re
from typing import Any, Callable, Iterable, Mapping, Sequence

# ------------------------------------------------------------------------------------------------------ the rules
# Every pattern is used with fullmatch(): with match(), `$` would also accept a trailing newline.
SERVICE_RE = re.compile(r"[a-z][a-z0-9-]{0,38}[a-z0-9]")
TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
# A tag of only digits and dots (maybe after "v") is meant as a version: it must be vMAJOR.MINOR.PATCH.
VERSION_LIKE_RE = re.compile(r"v?[0-9]+(\.[0-9]+)*")
SEMVER_RE = re.compile(r"v[0-9]+\.[0-9]+\.[0-9]+")
MUTABLE_TAGS = frozenset({"latest"})
RUN_ID_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# An environment is a directory name under inventories/ and a group name in the inventory.
ENV_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
# Extra variables given as key=value must be variable names (a stray `--extra-vars=x` becomes a key otherwise).
VAR_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_ARG_LEN = 128

SERVICE_RULE = "use 2-40 lower-case letters, digits and '-', starting with a letter and not ending with '-'"
TAG_RULE = ("use a version such as v1.4.2 or a tag of letters, digits, '_', '.' and '-' (at most 128, not starting "
            "with '.' or '-')")
RUN_ID_RULE = "use 1-64 letters, digits, '.', '_' or '-' (or leave it out: the run gets one)"
ENV_RULE = "one directory with a hosts.yml under inventories/"


class InputRefused(ValueError):
    """An input broke a rule; the message names the value and what to change. Entry points show it as is."""


def shown(value: Any) -> str:
    """A value for a message: quoted (a newline or a trailing space stays visible), cut at 40 characters."""
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:40] + "...")
    text = repr(value)
    return text if len(text) <= 43 else text[:40] + "..."


def check_service_name(value: Any) -> str:
    """A service name (the registry's key): returned as is, or InputRefused."""
    if not isinstance(value, str) or len(value) > MAX_ARG_LEN or not SERVICE_RE.fullmatch(value):
        raise InputRefused(f"service {shown(value)} is not a service name: {SERVICE_RULE}")
    return value


def check_known_service(value: Any, known: Sequence[str], where: str) -> str:
    """A service of the registry `where` (registry_of(env) names an environment's)."""
    check_service_name(value)
    if value not in known:
        raise InputRefused(f"service {shown(value)} is not in {where}; known: {', '.join(sorted(known)) or '(none)'}")
    return str(value)


def check_version(value: Any) -> str:
    """A release to deploy: vMAJOR.MINOR.PATCH or another immutable image tag."""
    if not isinstance(value, str) or len(value) > MAX_ARG_LEN or not TAG_RE.fullmatch(value):
        raise InputRefused(f"version {shown(value)} is not an image tag: {TAG_RULE}")
    if VERSION_LIKE_RE.fullmatch(value) and not SEMVER_RE.fullmatch(value):
        raise InputRefused(f"version {shown(value)} looks like a version: give all three parts with a leading v, "
                           "e.g. v1.4.2")
    if value in MUTABLE_TAGS:
        raise InputRefused(f"version {shown(value)} is a moving tag, which cannot be rolled back: use an immutable "
                           "tag such as v1.4.2")
    return value


def check_image_tag(value: Any) -> str:
    """A tag written in the registry (`version:`): any image tag; the stricter release rule is for requests."""
    if not isinstance(value, str) or not TAG_RE.fullmatch(value):
        raise InputRefused(f"version {shown(value)} is not an image tag: {TAG_RULE}")
    return value


def check_version_needs_service(service: Any, version: Any, known: Sequence[str]) -> None:
    """A version names a release of one service: given (even empty) without a service, it is refused."""
    if version is not None and service is None:
        raise InputRefused(f"a version ({shown(version)}) was given without a service: name the service to deploy "
                           f"at that version, one of: {', '.join(sorted(known)) or '(none)'}")


def check_run_id(value: Any) -> str:
    if not isinstance(value, str) or not RUN_ID_RE.fullmatch(value):
        raise InputRefused(f"run id {shown(value)} is not valid: {RUN_ID_RULE}")
    return value


def check_env_name(value: Any, known: Sequence[str]) -> str:
    """An environment: one of `known` (the directories with a hosts.yml under inventories/, see env_names)."""
    if not isinstance(value, str) or len(value) > MAX_ARG_LEN or not ENV_RE.fullmatch(value) or value not in known:
        raise InputRefused(f"environment {shown('' if value is None else value)} is unknown: use one of: "
                           f"{', '.join(known) or '(none)'} ({ENV_RULE})")
    return value


def env_names(directories: Iterable[str]) -> list[str]:
    """The environments among the names of inventories/'s subdirectories that hold a hosts.yml: sorted, and only
    those an environment name can be (a group name in the inventory)."""
    return sorted(name for name in directories if ENV_RE.fullmatch(name))


def registry_of(env: str) -> str:
    """Where an environment's services are declared, as check_known_service and check_request name it."""
    return f"the services registry of {env} (slipway_services in inventories/{env}/)"


def check_request(service: Any, version: Any, known: Sequence[str], where: str, rollback: bool = False) -> None:
    """A request for services: a deploy (`service` and `version` optional, a version only with a service), a
    rollback (`rollback=True`: the service is required) or a read (status, history, unlock: pass version=None).
    None means "not given"; anything else given, the empty string too, must follow the rules."""
    if rollback and service is None:
        raise InputRefused(f"a rollback needs a service: one of: {', '.join(sorted(known)) or '(none)'}")
    check_version_needs_service(service, version, known)
    if service is not None:
        check_known_service(service, known, where)
    if version is not None:
        check_version(version)


def check_raw_extra_var(raw: str, parsed: Mapping[str, Any], known_envs: Sequence[str] = ()) -> None:
    """One `-e key=value ...` argument as typed, against what Ansible's own parser made of it (`parsed`): every key
    must be a variable name, and every value must be exactly what was typed (Ansible drops surrounding blanks,
    newlines and quotes, so `-e 'version=v1.2.3 '` would deploy another text than the one given).

    When the argument is one request variable (`version=...`: env, service, version, slipway_run_id), the text
    typed after the `=` is checked with that variable's rule, so the message is the one the CLI gives."""
    bad_keys = [key for key in parsed if not isinstance(key, str) or not VAR_NAME_RE.fullmatch(key)]
    if not bad_keys and " ".join(f"{key}={value}" for key, value in parsed.items()) == raw:
        return
    name, _, typed = raw.partition("=")
    rules: dict[str, Callable[[str], Any]] = {
        "env": lambda value: check_env_name(value, known_envs), "service": check_service_name,
        "version": check_version, "slipway_run_id": check_run_id}
    # One variable, not several (`env=local service=notes-api `): a single key, or text Ansible could not read as
    # more name=value pairs (a bad key, or words without `=`, which it keeps as `_raw_params`).
    if name in rules and (len(parsed) == 1 or bad_keys or "_raw_params" in parsed):
        rules[name](typed)
    if bad_keys:
        raise InputRefused(f"extra variable {shown(str(bad_keys[0]))} (from -e {shown(raw)}) is not a variable "
                           "name: give each as -e name=value, or as JSON: -e '{\"name\": \"value\"}'")
    raise InputRefused(f"-e {shown(raw)} is not read as typed (Ansible drops blanks, line breaks, quotes and "
                       "backslashes): give each variable as -e name=value with nothing around the value, or as "
                       "JSON: -e '{\"name\": \"value\"}'")


# ------------------------------------------------------------------------------------------- phases and results
# The phases of a rollout, in order; a result's durations and failed_phase use these words.
PHASES = ("preflight", "lock", "skip-check", "image", "backup", "migrate", "start", "health", "switch", "drain",
          "record", "unlock")
# The steps the controller asks a host for after `begin` (its answer's `todo` lists those left, in this order).
STEPS = ("image", "backup", "migrate", "start", "health", "switch", "drain", "record")
# Per app host (can run on N hosts before any edge switches) and per edge.
APP_HOST_STEPS = ("image", "start", "health")
COLOURS = ("blue", "green")

# Results: `continue` only between steps; the others are final.
RESULTS = ("deployed", "noop", "planned", "failed", "unknown")
CONTINUE = "continue"
# todo: the steps left, in order (after `begin`); upload: where the controller puts an image archive for the image
# step, when the host lacks the image (the step loads it from there, or pulls when there is none).
# migration_revision: Alembic's revision after this run's migration, when known (the cluster rollout hands the first
# app host's to the others' record step). published: across hosts, where the new colour's replicas answer on the app
# host's private address (`<address>:<port>`) once their gate passed (the monitoring host's file_sd targets).
RESULT_KEYS = ("service", "result", "version", "previous_version", "colour", "failed_phase", "message", "durations",
               "todo", "upload", "run_id", "migration_revision", "published")

# The audit of a run: who asked and from where, as the controller saw it (src/slipway/audit.py collects it; the role
# passes it to the host program as `--audit JSON`). Every history line and every lock carries these keys.
AUDIT_KEYS = ("env", "actor", "controller", "commit", "tag", "run_url", "approval")
AUDIT_MAX = 300
# One line of history.jsonl: every key is present (empty when it does not apply). `who` is the actor (kept for the
# readers of older lines); `reason` is an unlock's; `backup` the file the run's backup before its migration wrote on
# the data host (the one to restore from, docs/backups.md), empty when none ran (lines written before it have none).
# The one line of a rollout across hosts also has `hosts`, each host's result (host/rollout_record.py).
HISTORY_KEYS = ("time", "service", "action", "result", "version", "previous_version", "image", "digest", "colour",
                "config_hash", "migration_revision", "backup", "who", *AUDIT_KEYS, "reason", "run_id", "failed_phase",
                "message", "durations")
# What `slipway history` shows of each line (the collection's history_records filter picks these).
HISTORY_SHOWN = ("time", "service", "action", "result", "version", "previous_version", "colour", "failed_phase",
                 "run_id", "actor", "commit", "tag", "run_url", "approval", "reason", "backup")
# A lock is reported STALE (still refused, with the unlock line to run) when no command of its run is working and
# its last progress is older than this (app_release_lock_stale_after).
LOCK_STALE_AFTER = 120.0
REASON_RULE = "give 3-200 printable characters on one line, without '{' or '}'"
_UNSAFE_RE = re.compile(r"[\x00-\x1f\x7f]+")


def clean_text(value: Any, limit: int = AUDIT_MAX) -> str:
    """A value for an audit field: text on one line, without control characters or braces (nothing Ansible would
    template), cut at `limit`."""
    text = _UNSAFE_RE.sub(" ", "" if value is None else str(value)).replace("{", "(").replace("}", ")")
    return text.strip()[:limit]


def audit(obj: Any) -> dict[str, str]:
    """The audit of a run: every AUDIT_KEYS key, as clean text; anything else is dropped."""
    if not isinstance(obj, Mapping):
        raise InputRefused(f"the audit {shown(obj)} is not a JSON object with the keys {', '.join(AUDIT_KEYS)}")
    return {key: clean_text(obj.get(key)) for key in AUDIT_KEYS}


def check_reason(value: Any) -> str:
    """Why a lock is released by hand (recorded in the history)."""
    if (not isinstance(value, str) or not 3 <= len(value.strip()) <= 200 or _UNSAFE_RE.search(value)
            or "{" in value or "}" in value):
        raise InputRefused(f"reason {shown(value)} is not valid: {REASON_RULE}")
    return value.strip()


def describe_lock(lock: Mapping[str, Any]) -> str:
    """`run R (actor on controller, run URL, deploy of V, since T, last progress: step S at T)`: who holds a lock."""
    from datetime import datetime, timezone  # noqa: PLC0415 - only this function formats a time

    found = lock.get("audit")
    audit_: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    who = str(audit_.get("actor") or lock.get("holder") or "unknown holder")
    if audit_.get("controller"):
        who += f" on {audit_['controller']}"
    parts = [who, *([str(audit_["run_url"])] if audit_.get("run_url") else []),
             f"{lock.get('action', 'deploy')} of {lock.get('version') or '?'}", f"since {lock.get('since')}"]
    beat = lock.get("heartbeat")
    if isinstance(beat, (int, float)):
        at = datetime.fromtimestamp(float(beat), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        parts.append(f"last progress: {'step ' + str(lock['step']) if lock.get('step') else 'lock'} at {at}")
    return f"run {lock.get('run_id')} ({', '.join(parts)})"


def unlock_command(env: str, service: str) -> str:
    """The command that releases a service's lock, as messages and the runbook print it."""
    return f"slipway unlock --env {env or '<env>'} --service {service} --reason '<why>'"


# Exit codes of the host program (the CLI's own are in src/slipway/exitcodes.py and mean the same for 0-3).
EXIT_OK = 0  # done (noop, continue, deployed)
EXIT_FAILED = 1  # the rollout failed and was cleaned up: the previous release serves
EXIT_USAGE = 2  # bad arguments
EXIT_NEEDS_PERSON = 3  # the host is in a state that needs a person
EXIT_OUTDATED = 4  # this host program is another build than the controller's: install it, then ask again


def other_colour(colour: str) -> str:
    return "green" if colour == "blue" else "blue"


def result(service: str, outcome: str, **fields: Any) -> dict[str, Any]:
    """A result in the schema: every key present."""
    out: dict[str, Any] = {"service": service, "result": outcome, "version": "", "previous_version": "",
                           "colour": "", "failed_phase": "", "message": "", "durations": {}, "todo": [],
                           "upload": "", "run_id": "", "migration_revision": "", "published": []}
    out.update({k: v for k, v in fields.items() if k in RESULT_KEYS})
    return out


def parse_result(obj: Any) -> dict[str, Any]:
    """A host's answer (a dict or its JSON text) in the schema; anything unreadable is result `unknown`."""
    import json  # noqa: PLC0415 - only this function parses text

    if isinstance(obj, str):
        try:
            obj = json.loads(obj) if obj.strip() else None
        except (ValueError, RecursionError):
            obj = None
    if not isinstance(obj, dict):
        return result("", "unknown", message="no answer from the host program")
    outcome = str(obj.get("result", "unknown"))
    if outcome not in (*RESULTS, CONTINUE):
        outcome = "unknown"
    todo = obj.get("todo")
    todo = [s for s in todo if isinstance(s, str) and s in STEPS] if isinstance(todo, list) else []
    fields = {k: obj[k] for k in RESULT_KEYS if k in obj and k not in ("service", "result", "todo")}
    if "published" in fields:
        found = fields["published"]
        fields["published"] = [str(t) for t in found if isinstance(t, str)] if isinstance(found, list) else []
    service = obj.get("service")
    return result("" if service is None else str(service), outcome, todo=todo, **fields)


# ---------------------------------------------------------------------------------------------- derived names
def service_id(service: str) -> str:
    """The identifier form of a service name: `lark-service` -> `lark_service` (databases, roles, variables)."""
    return check_service_name(service).replace("-", "_")


def container_name(service: str, colour: str, replica: int = 0) -> str:
    """A colour's container (its first replica; the others end in -2, -3, ...), also its server name in the proxy."""
    return f"{service}-{colour}" + (f"-{replica + 1}" if replica else "")


def colour_containers(service: str, colour: str, replicas: int) -> list[str]:
    """Every replica's container of one colour, in order."""
    return [container_name(service, colour, replica) for replica in range(replicas)]


def set_aside_name(name: str) -> str:
    """Where `start` sets a kept release's container (web replica or worker) aside while a new one takes its name."""
    return f"{name}-kept"


def kept_container_name(service: str, colour: str, replica: int = 0) -> str:
    """Where `start` sets the kept release aside while a new one takes its colour's name."""
    return set_aside_name(container_name(service, colour, replica))


def migration_container_name(service: str, run_id: str) -> str:
    return f"{service}-migrate-{run_id}"[:63]


def backend_name(service: str) -> str:
    return f"be_{service_id(service)}"


def live_env_var(service: str) -> str:
    """The HAProxy environment variable holding a service's live colour (set in live/<service>.cfg)."""
    return f"SLIPWAY_LIVE_{service_id(service)}"


def backup_file(db_name: str, stamp: str) -> str:
    """A PostgreSQL backup of one database (the postgresql role's slipway-pg-backup writes these)."""
    return f"{db_name}-{stamp}.dump"


def service_names(service: str) -> dict[str, str]:
    """Every name derived from a service name (the registry filter adds these to each entry)."""
    sid = service_id(service)
    return {
        "id": sid,
        "db_name": sid,
        "db_owner": f"{sid}_owner",
        "db_user": sid,
        "redis_user": service,
        "redis_key_prefix": f"{service}:",
        "db_password_var": f"vault_{sid}_db_password",
        "db_owner_password_var": f"vault_{sid}_db_owner_password",
        "redis_password_var": f"vault_{sid}_redis_password",
        "backend": backend_name(service),
        "live_env_var": live_env_var(service),
        "blue": container_name(service, "blue"),
        "green": container_name(service, "green"),
    }


# ---------------------------------------------------------------------------------------------- addresses
# The shared network's subnet is split in two: the lower half is Docker's pool (`ip_range`: every container started
# without an address), the upper half is reserved for fixed addresses that no other container can take. Fixed
# addresses are part of a container's configuration, so they survive container restarts, engine restarts and
# reboots whatever the start order: the edge routes to colours and the apps reach PostgreSQL and Redis by address,
# never through Docker's embedded DNS, which does not answer while the engine restarts.
# Reserved half: 16 infrastructure addresses first, then one block of SLOT_SIZE per service (its slot, allocated
# once per host and kept): blue replicas first, then green.
NETWORK_SUBNET_DEFAULT = "172.30.0.0/22"
# What "private" means, once: RFC 1918 (the shared Docker network's subnet must be inside one of these), and for a
# host's private (VPC) address also the shared address space (RFC 6598) some clouds give their VPCs.
RFC1918_NETWORKS = tuple(ipaddress.IPv4Network(net) for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
PRIVATE_NETWORKS = (*RFC1918_NETWORKS, ipaddress.IPv4Network("100.64.0.0/10"))
SUBNET_RULE = "give a private IPv4 network in CIDR form, /16 to /24, such as 172.30.0.0/22"
INFRA_ADDRESSES = ("postgres", "redis")
INFRA_BLOCK = 16
SLOT_SIZE = 16
MAX_REPLICAS = SLOT_SIZE // 2


def network_plan(subnet: Any) -> dict[str, Any]:
    """The layout of the shared network: gateway, ip_range (Docker's pool), the infrastructure's fixed addresses
    and how many service slots fit. InputRefused for anything but a private IPv4 /16 to /24."""
    try:
        net = ipaddress.IPv4Network(str(subnet), strict=True)
    except ValueError as err:
        problem = f"infra_network_subnet {shown(subnet)} is not an IPv4 network ({err})"
        raise InputRefused(f"{problem}; {SUBNET_RULE}") from err
    if not 16 <= net.prefixlen <= 24 or not any(net.subnet_of(private) for private in RFC1918_NETWORKS):
        raise InputRefused(f"infra_network_subnet {shown(subnet)} is not private or not /16 to /24; {SUBNET_RULE}")
    pool, reserved = net.subnets(prefixlen_diff=1)
    infra = {name: str(reserved[i + 1]) for i, name in enumerate(INFRA_ADDRESSES)}
    return {
        "subnet": str(net),
        "gateway": str(net[1]),
        "ip_range": str(pool),
        "reserved": str(reserved),
        "infra": infra,
        "slots": (reserved.num_addresses - INFRA_BLOCK - 1) // SLOT_SIZE,  # never the broadcast address
    }


def colour_address(subnet: str, slot: int, colour: str, replica: int = 0) -> str:
    """The fixed address of one replica of one colour of the service holding `slot`."""
    plan = network_plan(subnet)
    if not 0 <= slot < plan["slots"] or colour not in COLOURS or not 0 <= replica < MAX_REPLICAS:
        raise InputRefused(f"no address for slot {slot}, {colour} replica {replica} in {plan['subnet']}")
    reserved = ipaddress.IPv4Network(plan["reserved"])
    return str(reserved[INFRA_BLOCK + slot * SLOT_SIZE + COLOURS.index(colour) * MAX_REPLICAS + replica])


ADDRESSES_FILE = "/var/lib/slipway/addresses.json"


# State on a host: one directory per service under the state root.
STATE_ROOT = "/var/lib/slipway/services"


class StatePaths:
    """The files of one service's release state (written only by the host package's store)."""

    def __init__(self, root: str, service: str) -> None:
        self.dir = os.path.join(root, check_service_name(service))
        self.state = os.path.join(self.dir, "state.json")
        self.history = os.path.join(self.dir, "history.jsonl")
        self.lock = os.path.join(self.dir, "lock.json")
        self.active = os.path.join(self.dir, ".active")
        self.runs = os.path.join(self.dir, "runs")
        self.logs = os.path.join(self.dir, "logs")
        self.image_archive = os.path.join(self.dir, "image.tar")  # shipped by the controller, removed once loaded

    def run(self, run_id: str) -> str:
        return os.path.join(self.runs, f"{check_run_id(run_id)}.json")

    def log(self, run_id: str, what: str) -> str:
        return os.path.join(self.logs, f"{check_run_id(run_id)}-{what}.log")


def split_steps(text: str) -> tuple[list[str], str | None]:
    """`health,switch` -> (steps, None), or ([], the problem) for an unknown or out-of-order step."""
    steps = [s for s in text.split(",") if s]
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        return [], f"unknown step {unknown[0]!r}; steps are {', '.join(STEPS)}"
    twice = [s for s in STEPS if steps.count(s) > 1]
    if twice:
        return [], f"step {twice[0]!r} is given twice; steps are {', '.join(STEPS)}"
    if [STEPS.index(s) for s in steps] != sorted(STEPS.index(s) for s in steps):
        return [], f"steps must be in rollout order: {', '.join(STEPS)}"
    return steps, None
