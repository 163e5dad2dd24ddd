"""Check a playbook's request on the controller before any host is touched, and name the run.

Every playbook starts with playbooks/preflight.yml, and the rollout's speed targets count every task: each task
costs a worker process (0.05-0.1 s, more under load), so the checks that were three Jinja tasks (the environment,
the service and version asked for, the run's id) are this one action. It never connects to a host.

Every rule and message is the contract's (slipway_core.contract), the same the `slipway` CLI applies:
- every request: each `-e` given as key=value is read by Ansible as typed (contract.check_raw_extra_var: Ansible's
  parser drops blanks, line breaks and quotes and makes `--extra-vars=x` a key); `env` names a directory with a
  hosts.yml under `inventories`, and the loaded inventory has hosts in the group of that name; `run_id`, when
  given, is a valid run id.
- request `deploy`: also `service`, when given, is in that environment's `slipway_services`; `version` only with
  a service, and it is a release tag (contract.check_version). Only the registry's names are read: templating
  its entries would resolve their secrets.
- request `rollback`: also `service` is given and known.
- request `status` (status, history, unlock): also `service`, when given, is known.
- deploy and rollback return `run_id`: `run_id` when given (`-e slipway_run_id=`, as the CLI passes it), else 12
  random hex digits. The run owns the locks it takes.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from ansible import context
from ansible.errors import AnsibleFilterError
from ansible.parsing.splitter import parse_kv
from ansible.plugins.action import ActionBase
from ansible_collections.slipway.core.plugins.filter.environments import environments
from ansible_collections.slipway.core.plugins.plugin_utils.core import load_contract

ARGUMENT_SPEC: dict[str, Any] = {
    "inventories": {"type": "path", "required": True},
    "request": {"type": "str", "choices": ["env", "deploy", "rollback", "status"], "default": "env"},
    "env": {"type": "raw", "required": False},
    "service": {"type": "raw", "required": False},
    "version": {"type": "raw", "required": False},
    "run_id": {"type": "raw", "required": False},
}
RUN_ID_REQUESTS = ("deploy", "rollback")  # the requests that take locks: they get a run id


def raw_extra_vars() -> list[str]:
    """The `-e` arguments given as key=value, as typed (files, JSON and YAML are read as written)."""
    given: Sequence[Any] = context.CLIARGS.get("extra_vars") or ()
    return [str(raw) for raw in given if raw and not str(raw).startswith(("@", "{", "[", "/", "."))]


def check_no_hosts(env: str, groups: Mapping[str, Any]) -> str | None:
    """None when the loaded inventory has hosts in the environment's group, else what to fix."""
    if groups.get(env):
        return None
    return (f"Environment '{env}' has no hosts in the loaded inventory. Its hosts belong in group '{env}' in "
            f"inventories/{env}/hosts.yml, and that file must be listed in ansible.cfg's inventory "
            "(or passed with -i).")


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
            contract = load_contract()
            known = contract.env_names(environments(args["inventories"]))
        except AnsibleFilterError as err:
            return {**result, "failed": True, "msg": str(err)}
        request = args["request"]
        env, service, run_id = args.get("env"), args.get("service"), args.get("run_id")
        groups: Mapping[str, Any] = task_vars.get("groups") or {}
        try:
            for raw in raw_extra_vars():
                contract.check_raw_extra_var(raw, parse_kv(raw), known)
            contract.check_env_name(env, known)
            problem = check_no_hosts(env, groups)
            if problem is not None:
                return {**result, "failed": True, "msg": problem}
            if request != "env":
                registry = self._registry(task_vars, groups[env][0])
                if not isinstance(registry, Mapping):
                    return {**result, "failed": True,
                            "msg": f"slipway_services of environment '{env}' must be a map of service name -> settings"}
                contract.check_request(service, args.get("version") if request == "deploy" else None,
                                       sorted(str(name) for name in registry), contract.registry_of(env),
                                       rollback=request == "rollback")
            if run_id is not None:
                contract.check_run_id(run_id)
        except contract.InputRefused as err:
            return {**result, "failed": True, "msg": str(err)}
        if request in RUN_ID_REQUESTS:
            result["run_id"] = secrets.token_hex(6) if run_id is None else run_id
        result["msg"] = f"environment {env}: request checked"
        return result
