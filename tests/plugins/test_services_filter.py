"""The services registry filter (slipway.core.services): one validated view of slipway_services for every role."""

from __future__ import annotations

import copy
import importlib.util
import sys
from typing import Any

import pytest
from ansible.errors import AnsibleError, AnsibleFilterError
from plugin_loader import FILTERS, VALID_SERVICE, load_filter

from slipway_core import contract

services_filter = load_filter("services")

VALID: dict[str, Any] = dict(VALID_SERVICE)


def one(**changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(VALID)
    spec.update(changes)
    return {"lark-service": spec}


def test_entry_gets_defaults_and_derived_names() -> None:
    [entry] = services_filter.services(one())
    assert entry["id"] == "lark_service"
    assert entry["image_ref"] == "registry.example.com/acme/lark-service:v1.4.2"
    assert entry["health_path"] == "/health"
    assert entry["migrate_command"] == []
    assert entry["resources"] == {"cpus": "0.5", "memory": "512m"}
    assert entry["db_name"] == "lark_service"
    assert entry["db_owner"] == "lark_service_owner"
    assert entry["db_user"] == "lark_service"
    assert entry["redis_key_prefix"] == "lark-service:"
    assert entry["db_password_var"] == "vault_lark_service_db_password"  # pragma: allowlist secret
    assert entry["redis_password_var"] == "vault_lark_service_redis_password"  # pragma: allowlist secret
    assert entry["backend"] == "be_lark_service"
    assert entry["live_env_var"] == "SLIPWAY_LIVE_lark_service"
    assert (entry["blue"], entry["green"]) == ("lark-service-blue", "lark-service-green")
    assert entry["replicas"] == 1
    assert entry["servers"] == {"blue": [{"name": "lark-service-blue", "enabled_by": ""}],
                                "green": [{"name": "lark-service-green", "enabled_by": ""}]}


def test_replicas_give_the_edge_one_server_per_replica() -> None:
    [entry] = services_filter.services(one(replicas=3))
    assert entry["replicas"] == 3
    assert [s["name"] for s in entry["servers"]["green"]] == [
        "lark-service-green", "lark-service-green-2", "lark-service-green-3"]
    assert [s["enabled_by"] for s in entry["servers"]["blue"]] == [
        "", "SLIPWAY_LIVE_lark_service_R2", "SLIPWAY_LIVE_lark_service_R3"]


def test_the_derived_names_are_the_contracts() -> None:
    [entry] = services_filter.services(one())
    derived = contract.service_names("lark-service")
    assert {key: entry[key] for key in derived} == derived


def test_an_entry_names_the_secrets_and_carries_no_secret_value() -> None:
    # Every role loops over the entries, and Ansible writes a loop's items into its events (ansible-runner's
    # artifacts) whatever the label shows: the values come from the secret_env filter, in no_log tasks only.
    seeded = "seeded-entry-secret-7f3a"  # pragma: allowlist secret
    registry = one(secret_env={"TOKEN": seeded, "API_KEY": 12345}, env={"LOG_LEVEL": "info"})
    [entry] = services_filter.services(registry)
    assert entry["secret_env_names"] == ["API_KEY", "TOKEN"]
    assert seeded not in repr(entry) and "12345" not in repr(entry)
    assert entry["env"] == {"LOG_LEVEL": "info"}  # public: kept whole
    assert services_filter.secret_env(registry, "lark-service") == {"TOKEN": seeded, "API_KEY": "12345"}
    assert services_filter.secret_env(one(), "lark-service") == {}


def test_secret_env_is_checked_and_names_the_service() -> None:
    with pytest.raises(AnsibleFilterError, match=r"slipway_services\['lark-service'\].secret_env"):
        services_filter.services(one(secret_env={"lower": "x"}))
    with pytest.raises(AnsibleFilterError, match=r"slipway_services\['lark-service'\].secret_env"):
        services_filter.secret_env(one(secret_env=["TOKEN"]), "lark-service")
    with pytest.raises(AnsibleFilterError, match="'nosuch' is not a service"):
        services_filter.secret_env(one(), "nosuch")


def test_entries_are_sorted_by_name() -> None:
    registry = {**one(), "alpha-api": {**VALID, "domain": "alpha.example.com"}}
    assert [e["name"] for e in services_filter.services(registry)] == ["alpha-api", "lark-service"]


def test_empty_registry_is_an_empty_list() -> None:
    assert services_filter.services(None) == []
    assert services_filter.services({}) == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"port": 0}, "slipway_services['lark-service'].port"),
        ({"port": "8000"}, ".port"),
        ({"port": True}, ".port"),
        ({"version": "v1.2.3; rm -rf /"}, ".version"),
        ({"version": "x" * 200}, ".version"),
        ({"version": "v1.2.3\n"}, ".version"),
        ({"domain": "lark.example.com\n"}, ".domain"),
        ({"image": "Registry/App:v1"}, ".image"),
        ({"domain": "Bad_Domain"}, ".domain"),
        ({"health_path": "health"}, ".health_path"),
        ({"migrate_command": "alembic upgrade head"}, ".migrate_command"),
        ({"postgres": "yes"}, ".postgres"),
        ({"resources": {"memory": "lots"}}, ".resources.memory"),
        ({"resources": {"cpus": "half"}}, ".resources.cpus"),
        ({"env": {"lower": "x"}}, ".env"),
        ({"colour": "blue"}, ".colour: unknown field"),
        ({"replicas": 0}, ".replicas: replicas 0 is not valid; give the containers per colour as a whole number"),
        ({"replicas": 9}, ".replicas"),
        ({"replicas": "2"}, ".replicas"),
        ({"replicas": True}, ".replicas"),
    ],
)
def test_bad_fields_name_the_service_and_field(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(AnsibleFilterError, match=r"lark-service") as error:
        services_filter.services(one(**changes))
    assert message in str(error.value)


@pytest.mark.parametrize("name", ["lark\n", "Lark", "lark_service", "-lark", "lark-", "a", "x" * 41, "1lark"])
def test_bad_service_names_are_refused(name: str) -> None:
    with pytest.raises(contract.InputRefused) as refused:
        contract.check_service_name(name)
    with pytest.raises(AnsibleFilterError, match="service name") as error:
        services_filter.services({name: VALID})
    assert str(error.value) == f"slipway_services: {refused.value}"


def test_a_bad_version_carries_the_contracts_message() -> None:
    with pytest.raises(AnsibleFilterError) as error:
        services_filter.services(one(version="v1.2.3 "))
    assert str(error.value) == (
        f"slipway_services['lark-service'].version: version 'v1.2.3 ' is not an image tag: {contract.TAG_RULE}"
    )


def test_a_missing_contract_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Python that runs Ansible lacks the slipway package: the first use says so, naming the fix (every plugin
    gets slipway_core through plugin_utils/core.py)."""
    monkeypatch.setitem(sys.modules, "slipway_core", None)  # makes `from slipway_core import contract` fail
    path = FILTERS.parent / "plugin_utils" / "core.py"
    spec = importlib.util.spec_from_file_location("slipway_core_plugin_utils_bare", path)
    assert spec and spec.loader
    bare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bare)
    for load in (bare.load_contract, bare.load_build):
        with pytest.raises(AnsibleError, match=r"slipway Python package is not installed .* pip install -e \."):
            load()


def test_two_services_cannot_share_a_domain() -> None:
    registry = {**one(), "other-api": copy.deepcopy(VALID)}
    with pytest.raises(AnsibleFilterError, match="already routed"):
        services_filter.services(registry)


def test_registry_must_be_a_map() -> None:
    with pytest.raises(AnsibleFilterError, match="must be a map"):
        services_filter.services(["lark-service"])


def test_selected_is_every_entry_or_the_one_named() -> None:
    entries = services_filter.services({**one(), "notes-api": {**VALID, "domain": "notes.example.com"}})
    assert [e["name"] for e in services_filter.selected(entries, "", "")] == ["lark-service", "notes-api"]
    assert [e["name"] for e in services_filter.selected(entries, "notes-api", "v2")] == ["notes-api"]


def test_selected_refuses_an_unknown_service_or_a_version_without_one() -> None:
    entries = services_filter.services(one())
    with pytest.raises(AnsibleFilterError, match=r"service 'web' is not in slipway_services; known: lark-service$"):
        services_filter.selected(entries, "web", "")
    with pytest.raises(AnsibleFilterError, match=r"a version \('v2'\) was given without a service: .* one of: lark"):
        services_filter.selected(entries, "", "v2")
