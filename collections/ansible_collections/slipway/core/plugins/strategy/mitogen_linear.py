"""The strategy ansible.cfg names: Ansible's linear strategy run through Mitogen for Ansible (docs/testing.md,
"Mitogen").

Ansible starts a new Python interpreter on the host for every task. Mitogen starts one per host and connection for
the whole run and sends it each module over the connection. Measured on this project's test hosts (2 cores, an idle
machine, 21 module runs against one Docker host container): 14.1-14.6 s with Ansible's linear strategy, 4.7-5.1 s
with this one; a whole Molecule scenario gains much less (docs/testing.md). Ansible's own strategy is one setting
away: `ANSIBLE_STRATEGY=ansible.builtin.linear`.

Mitogen takes over one connection: the Docker connection (`community.docker.docker` or `docker`: the local demo host,
the test hosts), by its full name too, which Mitogen alone does not. Every other connection runs as under Ansible's
linear strategy:
- `local`: Mitogen's hung the Molecule Docker driver's asynchronous container tasks (`async`/`async_status`), and a
  task on the controller starts no Python on another machine;
- SSH (staging, production, the cluster) is Mitogen's only in a play that sets `slipway_mitogen_ssh: true`: the
  provisioning plays of playbooks/infra.yml, a hundred-odd tasks per host, where one Python per host pays (the demo
  cluster's idempotent provision 78.4-79.3 s under Ansible's SSH, 34.5-37.0 s under Mitogen's). The deploys keep
  Ansible's own SSH: it already reuses its connections (ControlPersist) and pipelines modules, and a deploy runs few
  tasks per host, where Mitogen's measured slower (11.8-12.3 s against 8.5-9.0 s, idle machine, 2026-12-04).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import ansible_mitogen.loaders
import ansible_mitogen.module_finder
import ansible_mitogen.planner
import ansible_mitogen.strategy
import ansible_mitogen.transport_config
from ansible.playbook.play_context import PlayContext
from ansible.plugins.strategy.linear import StrategyModule as Linear
from ansible.utils.collection_loader import AnsibleCollectionConfig
from ansible_collections.slipway.core.plugins.plugin_utils import template_cache

# The connections Mitogen takes over in every play, by every name they go by, to the short name Mitogen knows them by.
SHORT_NAMES = {
    "docker": "docker",
    "community.docker.docker": "docker",
}
# Ansible's SSH connection, which Mitogen takes over too in a play whose vars set `slipway_mitogen_ssh: true`.
SSH_NAMES = {
    "ssh": "ssh",
    "ansible.builtin.ssh": "ssh",
}
PLAY_SWITCH = "slipway_mitogen_ssh"


def taken_in(play_vars: Mapping[str, Any]) -> dict[str, str]:
    """The connections Mitogen takes over in a play with these vars (its `vars:`, as written)."""
    if play_vars.get(PLAY_SWITCH) is True:
        return {**SHORT_NAMES, **SSH_NAMES}
    return dict(SHORT_NAMES)


def connection_for(name: str, play_connection: str | None, taken: Mapping[str, str] = SHORT_NAMES) -> str:
    """The connection plugin to load for `name`: Mitogen's own (`mitogen_docker`, `mitogen_ssh`) when it is one of
    `taken` and so is the play's connection (None: no play, as Mitogen assumes); `name` itself otherwise."""
    short = taken.get(name)
    if short is not None and (play_connection is None or play_connection in taken):
        return "mitogen_" + short
    return name


def connection_hook(taken: Mapping[str, str]) -> Callable[..., Any]:
    """Mitogen's connection loader hook for a play that has Mitogen take over `taken`, by full names as well as
    short ones."""

    def get_with_context(name: str, *args: Any, **kwargs: Any) -> Any:
        play = args[0] if args and isinstance(args[0], PlayContext) else None
        return ansible_mitogen.loaders.connection_loader__get_with_context(
            connection_for(name, play.connection if play is not None else None, taken), *args, **kwargs)

    return get_with_context


_connection_option = ansible_mitogen.transport_config.PlayContextSpec._connection_option


def _templated_option(spec: Any, name: str, fallback_attr: str | None = None) -> Any:
    """Mitogen's reading of a connection option (`host`: `ansible_host`), templated as Ansible's own connections
    get it: Mitogen reads the inventory's value as written, so inventories/local/hosts.yml's
    `ansible_host: "{{ lookup('ansible.builtin.env', 'SLIPWAY_LOCAL_HOST', ...) }}"` was taken for a container's
    name (the second CI under Mitogen, 2026-12-04: test_cli_local's provision unreachable)."""
    value = _connection_option(spec, name, fallback_attr)
    templar = getattr(spec._connection, "templar", None)
    if isinstance(value, str) and templar is not None and templar.is_template(value):
        return templar.template(value)
    return value


ansible_mitogen.transport_config.PlayContextSpec._connection_option = _templated_option

_python_path = ansible_mitogen.transport_config.PlayContextSpec.python_path


def _delegated_python_path(spec: Any, rediscover_python: bool = False) -> Any:
    """Mitogen's Python for a task, for a delegated task from the host it is delegated to: Mitogen reads the
    interpreter setting from that host's vars but the discovered interpreter from the delegating host's facts, so a
    task the Debian 12 data host delegated to a Debian 13 app host ran the data host's python3.11 there ("No such file
    or directory", unreachable: the cluster scenario, whose inventory leaves the interpreter to discovery)."""
    delegated_vars = spec._task_vars.get("ansible_delegated_vars") or {}
    delegated = delegated_vars.get(spec._connection.delegate_to_hostname)
    if not isinstance(delegated, dict):
        return _python_path(spec, rediscover_python)
    facts = delegated.get("ansible_facts")
    own = dict(spec._task_vars, ansible_facts=dict(facts) if isinstance(facts, Mapping) else {})
    task_vars, spec._task_vars = spec._task_vars, own
    try:
        return _python_path(spec, rediscover_python)
    finally:
        spec._task_vars = task_vars


ansible_mitogen.transport_config.PlayContextSpec.python_path = _delegated_python_path


def scan_collection_dirs(paths: Iterable[str]) -> tuple[str, ...]:
    """Every collection's directory under `paths` (each `<path>/ansible_collections/<namespace>/<name>`), the first
    path's copy of a collection found on several: the directories Ansible's own listing gives
    (ansible.collections.list.list_collection_dirs, test_mitogen_strategy.py compares them), without reading each
    collection's metadata, which took 0.18 s of every ansible-playbook run here (the `ansible` package's 94
    collections), and without importing ansible-galaxy's code for it."""
    found: list[str] = []
    seen: set[tuple[str, str]] = set()
    for path in paths:
        root = os.path.join(path, "ansible_collections")
        try:
            namespaces = sorted(os.listdir(root))
        except OSError:
            continue
        for namespace in namespaces:
            parent = os.path.join(root, namespace)
            if not namespace.isidentifier() or not os.path.isdir(parent):
                continue
            for name in sorted(os.listdir(parent)):
                directory = os.path.join(parent, name)
                if name.isidentifier() and (namespace, name) not in seen and os.path.isdir(directory):
                    seen.add((namespace, name))
                    found.append(directory)
    return tuple(found)


def configured_collection_paths() -> list[str]:
    """The collection paths of this run (ansible.cfg's, and sys.path's as Ansible scans it)."""
    return list(AnsibleCollectionConfig.collection_paths)


@functools.cache
def collection_dirs() -> tuple[str, ...]:
    """Every installed collection's directory, listed once per run."""
    return scan_collection_dirs(configured_collection_paths())


def _load_collections(invocation: Any) -> None:
    """Mitogen's `_load_collections`, from the list made once in the controller before the workers fork.

    Mitogen lists the installed collections again for every task, in the worker Ansible forks for it (its cache of
    planners lives in that worker and ends with it): with the `ansible` package's 100-odd collections that read each
    one's metadata every time. Measured on an idle 2-core machine, `infra.yml` on a provisioned demo host (127 tasks,
    3 runs each): 25.0-28.3 s wall and 14.7-17.0 s of controller user CPU before, 20.9-21.2 s and 11.7-11.8 s after."""
    invocation._extra_sys_paths.update(collection_dirs())


ansible_mitogen.planner._load_collections = _load_collections


@functools.cache
def compiled(source: bytes, filename: str, mode: str) -> Any:
    """`compile`, once per source text and name in a run: Mitogen scans each module it sends for the module_utils it
    imports by compiling the module and each of those files, again for every other module of the run that imports
    them (ansible.module_utils.basic and its 40-odd files for nearly every module)."""
    return compile(source, filename, mode)


ansible_mitogen.module_finder.compile = compiled  # the name its scan calls (the builtin until now)
template_cache.install()  # Ansible's compiled templates, shared by the workers and the runs (its docstring)


class StrategyModule(ansible_mitogen.strategy.StrategyMixin, Linear):
    """The linear strategy with Mitogen's connections."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        collection_dirs()  # in the controller, before any worker forks: each worker inherits the list

    def run(self, iterator: Any, play_context: Any, result: int = 0) -> Any:
        # Mitogen installs its hook by this module-level name when a play starts (AnsibleWrappers._install_wrappers)
        ansible_mitogen.strategy.wrap_connection_loader__get_with_context = connection_hook(
            taken_in(iterator._play.vars or {}))
        return super().run(iterator, play_context)
