"""Check a playbook's request on the controller before any host is touched, and name the run.

Every playbook starts with playbooks/preflight.yml, and the rollout's speed targets count every task: each task
costs a worker process (0.05-0.1 s, more under load), so the checks that were three Jinja tasks (the environment,
the service and version asked for, the run's id) are this one action. It never connects to a host.

- request `env` (every playbook): `env` names a directory with a hosts.yml under `inventories`, and the loaded
  inventory has hosts in the group of that name.
- request `deploy`: also `service`, when given, is in that environment's `slipway_services`; `version` only with
  a service, and it is an image tag (the services filter's rule). Only the registry's names are read: templating
  its entries would resolve their secrets.
- request `rollback`: also `service` is given and known.
- deploy and rollback return `run_id`: `run_id` when given (`-e slipway_run_id=`, as the CLI passes it), else 12
  random hex digits. The run owns the locks it takes.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible.plugins.action import ActionBase
from ansible_collections.slipway.core.plugins.filter.environments import environments
from ansible_collections.slipway.core.plugins.filter.services import TAG_RE

ARGUMENT_SPEC: dict[str, Any] = {
    "inventories": {"type": "path", "required": True},
    "request": {"type": "str", "choices": ["env", "deploy", "rollback"], "default": "env"},
    "env": {"type": "raw", "required": False},
    "service": {"type": "raw", "required": False},
    "version": {"type": "raw", "required": False},
    "run_id": {"type": "raw", "required": False},
}
RUN_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")  # what slipway-release accepts


def shown(value: Any) -> str:
    """A value for a message: a string, cut to 64 characters."""
    text = "" if value is None else str(value)
    return text if len(text) <= 64 else text[:61] + "..."


def check_env(env: Any, known: list[str], groups: Mapping[str, Any]) -> str | None:
    """None when `env` is a known environment with hosts, else what is wrong and what to pass."""
    if not isinstance(env, str) or env not in known:
        return (f"Unknown environment '{shown(env)}'. Pass -e env=<name> with one of: {', '.join(known)} "
                "(one directory per environment under inventories/).")
    if not groups.get(env):
        return (f"Environment '{env}' has no hosts in the loaded inventory. Its hosts belong in group '{env}' in "
                f"inventories/{env}/hosts.yml, and that file must be listed in ansible.cfg's inventory "
                "(or passed with -i).")
    return None


def check_service(request: str, registry: Mapping[str, Any], service: Any, version: Any) -> str | None:
    """None when the service (and version) asked for can be deployed or rolled back, else the problem."""
    names = ", ".join(sorted(str(name) for name in registry)) or "(none: slipway_services is empty)"
    known = isinstance(service, str) and service in registry
    if request == "rollback":
        if not known:
            return (f"Roll back one service with -e service=<name>, one of: {names} "
                    f"(got {shown(service)}).")
        return None
    if (service is not None and not known) or (version is not None and service is None):
        return (f"Deploy one service with -e service=<name> [-e version=<tag>]; service must be one of: {names} "
                f"(got service={shown(service)}, version={shown(version)}).")
    if version is not None and (not isinstance(version, str) or not TAG_RE.fullmatch(version)):
        return f"-e version={shown(version)} is not a valid image tag; use a tag such as v1.4.2"
    return None


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True  # reads only

    def _registry(self, task_vars: dict[str, Any], host: str) -> Any:
        """The environment's slipway_services as written (only its names are read): templating the entries would
        resolve their secrets, which the controller may not hold for a mere check."""
        raw = task_vars["hostvars"].raw_get(host).get("slipway_services")
        if raw is None or isinstance(raw, Mapping):
            return raw or {}
        # The map itself is an expression: resolve it as the host sees it (its entries too, then).
        return task_vars["hostvars"][host].get("slipway_services") or {}

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        _, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        result["changed"] = False
        try:
            known = environments(args["inventories"])
        except AnsibleFilterError as err:
            return {**result, "failed": True, "msg": str(err)}
        env = args.get("env")
        groups: Mapping[str, Any] = task_vars.get("groups") or {}
        problem = check_env(env, known, groups)
        if problem is None and args["request"] != "env":
            registry = self._registry(task_vars, groups[env][0])
            if not isinstance(registry, Mapping):
                problem = f"slipway_services of environment '{env}' must be a map of service name -> settings"
            else:
                problem = check_service(args["request"], registry, args.get("service"), args.get("version"))
        if problem is None and args["request"] != "env":
            run_id = args.get("run_id")
            if run_id is None:
                run_id = secrets.token_hex(6)
            elif not isinstance(run_id, str) or not RUN_ID_RE.fullmatch(run_id):
                problem = (f"-e slipway_run_id={shown(run_id)} is not valid; use 1-64 letters, digits, '.', '_' "
                           "or '-' (or leave it out: the run gets one)")
            result["run_id"] = run_id
        if problem is not None:
            return {**result, "failed": True, "msg": problem}
        result["msg"] = f"environment {env}: request checked"
        return result
