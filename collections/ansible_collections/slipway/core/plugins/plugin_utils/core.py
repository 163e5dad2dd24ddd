"""slipway_core (the contract, the topology rules and the host program's builder) for the collection's plugins.

The collection needs the slipway Python package in the Python that runs Ansible. Without it, a plugin that failed to
import would only be reported as missing; so the import is tried here once and a plugin asks for the module when
it needs it, getting an error that names the fix.
"""

from __future__ import annotations

from types import ModuleType

from ansible.errors import AnsibleError

NO_CORE = (
    "the slipway Python package is not installed in the Python that runs Ansible; pip install -e . in the repository"
)
try:
    from slipway_core import batches as _batches
    from slipway_core import build as _build
    from slipway_core import cluster as _cluster
    from slipway_core import cluster_rollout as _cluster_rollout
    from slipway_core import contract as _contract
    from slipway_core import job_rules as _job_rules
    from slipway_core import release_rules as _release_rules
    from slipway_core import topology as _topology
    from slipway_core import worker_rules as _worker_rules
except ImportError:  # said at the first use, naming the fix
    _build = _cluster = _cluster_rollout = _contract = _job_rules = _release_rules = _topology = None  # type: ignore[assignment]
    _worker_rules = _batches = None  # type: ignore[assignment]


def _loaded(module: ModuleType | None) -> ModuleType:
    if module is None:
        raise AnsibleError(NO_CORE)
    return module


def load_contract() -> ModuleType:
    """slipway_core.contract, or AnsibleError(NO_CORE)."""
    return _loaded(_contract)


def load_release_rules() -> ModuleType:
    """slipway_core.release_rules, or AnsibleError(NO_CORE)."""
    return _loaded(_release_rules)


def load_job_rules() -> ModuleType:
    """slipway_core.job_rules, or AnsibleError(NO_CORE)."""
    return _loaded(_job_rules)


def load_worker_rules() -> ModuleType:
    """slipway_core.worker_rules, or AnsibleError(NO_CORE)."""
    return _loaded(_worker_rules)


def load_topology() -> ModuleType:
    """slipway_core.topology, or AnsibleError(NO_CORE)."""
    return _loaded(_topology)


def load_batches() -> ModuleType:
    """slipway_core.batches (the rollout in batches' rules), or AnsibleError(NO_CORE)."""
    return _loaded(_batches)


def load_build() -> ModuleType:
    """slipway_core.build, or AnsibleError(NO_CORE)."""
    return _loaded(_build)


def load_cluster() -> ModuleType:
    """slipway_core.cluster (published ports, the edge's servers across hosts), or AnsibleError(NO_CORE)."""
    return _loaded(_cluster)


def load_cluster_rollout() -> ModuleType:
    """slipway_core.cluster_rollout (the cluster rollout's decisions), or AnsibleError(NO_CORE)."""
    return _loaded(_cluster_rollout)
