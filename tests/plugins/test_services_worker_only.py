"""A worker-only service in the registry (issue 15): `workers:` and no `port`/`domain`. The filter accepts it only
with at least one worker, marks it `web: false` (no edge backend, no servers, no web replicas), and refuses a port
without a domain or the reverse, and web-only settings, naming the service, the field and the fix."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError
from plugin_loader import VALID_SERVICE, load_filter

services_filter = load_filter("services")

MAILER = {"command": ["python", "-m", "notes_api.worker"]}


def worker_only(**changes: Any) -> dict[str, Any]:
    spec = {k: v for k, v in copy.deepcopy(dict(VALID_SERVICE)).items() if k not in ("port", "domain")}
    spec["workers"] = {"mailer": MAILER}
    spec.update(changes)
    return spec


def test_a_worker_only_service_has_no_web_process() -> None:
    [entry] = services_filter.services({"mailer": worker_only(postgres=True, redis=True)})
    assert entry["web"] is False
    assert (entry["port"], entry["domain"], entry["health_path"], entry["replicas"]) == (None, "", "", 0)
    assert entry["servers"] == {"blue": [], "green": []}
    assert list(entry["workers"]) == ["mailer"]
    # It still gets its database and Redis user like any service.
    assert (entry["postgres"], entry["redis"], entry["db_user"], entry["redis_user"]) == (True, True, "mailer",
                                                                                         "mailer")


def test_a_web_service_says_so() -> None:
    [entry] = services_filter.services({"lark-service": dict(VALID_SERVICE)})
    assert entry["web"] is True and entry["replicas"] == 1


def test_worker_only_services_share_no_domain_check_with_each_other() -> None:
    entries = services_filter.services({"a-mailer": worker_only(), "b-mailer": worker_only(),
                                        "lark-service": dict(VALID_SERVICE)})
    assert [(e["name"], e["web"]) for e in entries] == [("a-mailer", False), ("b-mailer", False),
                                                        ("lark-service", True)]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (worker_only(workers=None), r"\['mailer'\]\.port: missing: give the web process's port and domain, or at "
                                    "least one worker"),
        (worker_only(workers={}), r"\.port: missing: .* at least one worker under workers:"),
        (worker_only(port=8000), r"\['mailer'\]\.domain: missing: a service with a port is routed by the edge and "
                                 "needs a domain too; give both, or neither"),
        (worker_only(domain="mail.example.com"), r"\.port: missing: a service with a domain .* needs a port too"),
        (worker_only(replicas=2), r"\.replicas: a worker-only service .* remove it \(each worker has its own "
                                  r"replicas\)"),
        (worker_only(health_path="/health"), r"\.health_path: a worker-only service"),
    ],
)
def test_a_half_web_or_empty_service_is_refused_naming_the_field(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(AnsibleFilterError, match=message):
        services_filter.services({"mailer": spec})
