"""The services registry's `workers:` (slipway_core.worker_rules through the slipway.core.services filter): each
worker normalised with its defaults, and every bad setting refused naming the service, the worker's field and the
fix, before any host is touched."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError
from plugin_loader import VALID_SERVICE, load_filter

from slipway_core import worker_rules

services_filter = load_filter("services")

VALID: dict[str, Any] = dict(VALID_SERVICE)
MAILER = {"command": ["python", "-m", "notes_api.worker"]}


def with_workers(workers: Any) -> dict[str, Any]:
    spec = copy.deepcopy(VALID)
    spec["workers"] = workers
    return {"notes-api": spec}


def test_a_service_without_workers_has_none() -> None:
    [entry] = services_filter.services({"notes-api": VALID})
    assert entry["workers"] == {}


def test_a_worker_gets_its_defaults() -> None:
    [entry] = services_filter.services(with_workers({"mailer": MAILER}))
    assert entry["workers"] == {"mailer": {"command": ["python", "-m", "notes_api.worker"], "replicas": 1,
                                           "stop_timeout": 30, "health_command": [], "ready_after": 5}}


def test_a_worker_keeps_what_it_sets() -> None:
    given = {**MAILER, "replicas": 2, "stop_timeout": 90, "health_command": ["test", "-f", "/run/ready"],
             "ready_after": 3}
    [entry] = services_filter.services(with_workers({"mailer": given}))
    assert entry["workers"]["mailer"] == given
    names = [name for _, _, name in worker_rules.containers("notes-api", "green", entry["workers"])]
    assert names == ["notes-api-green-mailer", "notes-api-green-mailer-2"]


@pytest.mark.parametrize(
    ("workers", "message"),
    [
        ({"mailer": {}}, ".workers.mailer.command: None is not valid; give the worker's command as a non-empty list"),
        ({"mailer": {"command": "python -m notes_api.worker"}}, ".workers.mailer.command"),
        ({"mailer": {"command": []}}, ".workers.mailer.command"),
        ({"mailer": {"command": ["python", ""]}}, ".workers.mailer.command"),
        ({"mailer": {**MAILER, "replicas": 0}}, ".workers.mailer.replicas: 0 is not valid; give the worker's "
                                                "containers per colour as a whole number from 1 to 8"),
        ({"mailer": {**MAILER, "replicas": 9}}, ".workers.mailer.replicas"),
        ({"mailer": {**MAILER, "replicas": True}}, ".workers.mailer.replicas"),
        ({"mailer": {**MAILER, "stop_timeout": 0}}, ".workers.mailer.stop_timeout: 0 is not valid; give the seconds"),
        ({"mailer": {**MAILER, "stop_timeout": 3601}}, ".workers.mailer.stop_timeout"),
        ({"mailer": {**MAILER, "stop_timeout": "30"}}, ".workers.mailer.stop_timeout"),
        ({"mailer": {**MAILER, "health_command": "true"}}, ".workers.mailer.health_command"),
        ({"mailer": {**MAILER, "ready_after": 0}}, ".workers.mailer.ready_after"),
        ({"mailer": {**MAILER, "port": 8000}}, ".workers.mailer.port: unknown field; known fields are command"),
        ({"Mailer": MAILER}, ".workers.Mailer: 'Mailer' is not a worker name"),
        ({"kept": MAILER}, ".workers.kept: 'kept' is not a worker name"),
        ({"mail-kept": MAILER}, ".workers.mail-kept"),
        ({"mailer": ["python"]}, ".workers.mailer: must be a map of settings"),
        (["mailer"], ".workers: ['mailer'] is not valid; give a map of worker name -> settings"),
        ({"mail": {**MAILER, "replicas": 2}, "mail-2": MAILER}, ".workers.mail-2: its containers' names clash with "
                                                                "worker mail's (mail-2); rename one of them"),
    ],
)
def test_bad_workers_name_the_service_the_field_and_the_fix(workers: Any, message: str) -> None:
    with pytest.raises(AnsibleFilterError) as error:
        services_filter.services(with_workers(workers))
    assert str(error.value).startswith("slipway_services['notes-api'].workers")
    assert message in str(error.value)


def test_a_normalised_worker_passes_the_rules_again() -> None:
    """The host program checks the release's workers with the same rules: what the filter made of them passes."""
    [entry] = services_filter.services(with_workers({"mailer": MAILER, "indexer": {**MAILER, "replicas": 2}}))
    assert worker_rules.check_workers(entry["workers"]) == entry["workers"]
