"""slipway_core.contract as the entry points use it: every rule accepts what it should, refuses the rest with a
message that names the value (quoted, cut, a line break visible), and the derived names, results and steps."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from ansible.parsing.splitter import parse_kv

from slipway_core import contract
from slipway_core.contract import InputRefused

KNOWN = ("notes-api", "lark-service")
ENVS = ["local", "production", "staging"]


def refusal(check: Callable[..., Any], *args: Any) -> str:
    with pytest.raises(InputRefused) as refused:
        check(*args)
    return str(refused.value)


@pytest.mark.parametrize("value", ["ab", "notes-api", "x9", "a" * 40, "a-b-c"])
def test_service_name_accepted(value: str) -> None:
    assert contract.check_service_name(value) == value


@pytest.mark.parametrize(
    "value",
    ["a", "Notes", "notes-", "-notes", "9lives", "notes_api", "a" * 41, "x;y", "nötes", "notes-api ", "notes-api\n",
     "", "a" * 10_000, None, 7, ["notes-api"]],
)
def test_service_name_refused_naming_the_value(value: Any) -> None:
    message = refusal(contract.check_service_name, value)
    assert message == f"service {contract.shown(value)} is not a service name: {contract.SERVICE_RULE}"
    assert len(message) < 300


@pytest.mark.parametrize("value", ["v1.2.3", "v10.0.1", "sha-0a1b2c3", "main-20240101.1", "v1.2.3-rc.1", "2024_01"])
def test_version_accepted(value: str) -> None:
    assert contract.check_version(value) == value
    assert contract.check_image_tag(value) == value


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("1.2", "looks like a version"),
        ("v1.2", "looks like a version"),
        ("1.2.3", "looks like a version"),
        ("latest", "is a moving tag"),
        ("v1.2.3\n", "is not an image tag"),
        ("v1.2.3 ", "is not an image tag"),
        ("v1.2.3; rm -rf /", "is not an image tag"),
        ("-v1", "is not an image tag"),
        (".v1", "is not an image tag"),
        ("=--", "is not an image tag"),
        ("v1.2.3-ß", "is not an image tag"),
        ("v" * 10_000, "is not an image tag"),
        ("", "is not an image tag"),
        (1.2, "is not an image tag"),
        (None, "is not an image tag"),
    ],
)
def test_version_refused_naming_the_value(value: Any, problem: str) -> None:
    message = refusal(contract.check_version, value)
    assert message.startswith(f"version {contract.shown(value)} {problem}")
    assert len(message) < 300


def test_an_image_tag_in_the_registry_may_move_but_must_be_a_tag() -> None:
    assert contract.check_image_tag("latest") == "latest"
    assert contract.check_image_tag("1.2") == "1.2"
    assert refusal(contract.check_image_tag, "v1 2") == f"version 'v1 2' is not an image tag: {contract.TAG_RULE}"


def test_known_service() -> None:
    assert contract.check_known_service("notes-api", KNOWN, "the registry") == "notes-api"
    assert refusal(contract.check_known_service, "billing", KNOWN, "the registry") == (
        "service 'billing' is not in the registry; known: lark-service, notes-api"
    )
    assert refusal(contract.check_known_service, "billing", (), "the registry").endswith("known: (none)")
    assert "is not a service name" in refusal(contract.check_known_service, "a;b", KNOWN, "the registry")


@pytest.mark.parametrize("value", ["a", "gh-4711.2", "0123456789ab", "x" * 64])
def test_run_id_accepted(value: str) -> None:
    assert contract.check_run_id(value) == value


@pytest.mark.parametrize("value", ["", "a;b", "../x", "a b", "x" * 65, "ü", None, 12])
def test_run_id_refused_naming_the_value(value: Any) -> None:
    message = refusal(contract.check_run_id, value)
    assert message == f"run id {contract.shown(value)} is not valid: {contract.RUN_ID_RULE}"


def test_env_name() -> None:
    assert contract.check_env_name("staging", ENVS) == "staging"
    for value in ("nosuch", "local ", "local\n", "../local", "LOCAL", "", "d" * 10_000, None, 1):
        message = refusal(contract.check_env_name, value, ENVS)
        shown = contract.shown("" if value is None else value)
        assert message == (f"environment {shown} is unknown: use one of: local, production, staging "
                           f"({contract.ENV_RULE})")
    assert refusal(contract.check_env_name, "x", []).startswith("environment 'x' is unknown: use one of: (none)")


def test_env_names_are_the_directories_an_environment_can_be() -> None:
    names = ["staging", "local", "Prod", ".git", "my-env", "prod_2"]
    assert contract.env_names(names) == ["local", "prod_2", "staging"]


def test_registry_of_names_where_the_services_are() -> None:
    where = contract.registry_of("staging")
    assert where == "the services registry of staging (slipway_services in inventories/staging/)"


@pytest.mark.parametrize(
    ("service", "version", "rollback", "problem"),
    [
        (None, None, False, None),
        ("notes-api", None, False, None),
        ("notes-api", "v2.0.0", False, None),
        ("notes-api", None, True, None),
        (None, "v2.0.0", False, "a version ('v2.0.0') was given without a service: name the service to deploy at"
                                " that version, one of: lark-service, notes-api"),
        (None, "", False, "a version ('') was given without a service"),
        ("", None, False, "service '' is not a service name"),  # given empty is given: refused, not "all"
        ("notes-api", "", False, "version '' is not an image tag"),
        ("billing", None, False, "service 'billing' is not in the registry; known: lark-service, notes-api"),
        ("notes-api", "latest", False, "version 'latest' is a moving tag"),
        (None, None, True, "a rollback needs a service: one of: lark-service, notes-api"),
        ("a;b", "latest", False, "service 'a;b' is not a service name"),  # the service is checked first
    ],
)
def test_request(service: Any, version: Any, rollback: bool, problem: str | None) -> None:
    if problem is None:
        contract.check_request(service, version, KNOWN, "the registry", rollback=rollback)
        return
    assert refusal(contract.check_request, service, version, KNOWN, "the registry", rollback).startswith(problem)


@pytest.mark.parametrize(
    "raw", ["version=v1.2.3", "env=local service=notes-api", "ansible_python_interpreter=/usr/bin/python3", "a=b=c",
            "version=", "x=ü"],
)
def test_raw_extra_var_typed_as_read_passes(raw: str) -> None:
    contract.check_raw_extra_var(raw, parse_kv(raw), ENVS)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        # one request variable: its own rule on the text typed, the CLI's message for the same value
        ("version=v1.2.3 ", "version 'v1.2.3 ' is not an image tag"),
        ("version=v1.2.3\n", "version 'v1.2.3\\n' is not an image tag"),
        ("version=v1.2.3 --extra-vars=x", "version 'v1.2.3 --extra-vars=x' is not an image tag"),
        ("version=v1.2.3; rm -rf /", "version 'v1.2.3; rm -rf /' is not an image tag"),
        ('version="v1.2.3"', "version '\"v1.2.3\"' is not an image tag"),
        ("service=notes-api ", "service 'notes-api ' is not a service name"),
        ("env=local ", "environment 'local ' is unknown: use one of: local, production, staging"),
        ("slipway_run_id=a b", "run id 'a b' is not valid"),
        # anything else: what Ansible would not read as typed
        ("--extra-vars=x", "extra variable '--extra-vars' (from -e '--extra-vars=x') is not a variable name"),
        ("note=1 --extra-vars=x", "extra variable '--extra-vars' (from -e 'note=1 --extra-vars=x') is not a"),
        ("env=local service=notes-api ", "-e 'env=local service=notes-api ' is not read as typed"),
        ("note='a b'", "-e \"note='a b'\" is not read as typed"),
        ("note=a\\nb", "-e 'note=a\\\\nb' is not read as typed"),
        ("just words", "-e 'just words' is not read as typed"),
    ],
)
def test_raw_extra_var_changed_by_ansible_is_refused(raw: str, message: str) -> None:
    assert refusal(contract.check_raw_extra_var, raw, parse_kv(raw), ENVS).startswith(message)


def test_parse_result_keeps_the_schema() -> None:
    answer = contract.parse_result({"service": "notes-api", "result": "deployed", "version": "v2", "bogus": 1,
                                    "todo": ["health", "nope", 3], "durations": {"start": 1.5}})
    assert set(answer) == set(contract.RESULT_KEYS)
    assert (answer["service"], answer["result"], answer["version"]) == ("notes-api", "deployed", "v2")
    assert answer["todo"] == ["health"] and answer["durations"] == {"start": 1.5} and "bogus" not in answer
    assert contract.parse_result(json.dumps({"service": "a", "result": "continue"}))["result"] == "continue"


@pytest.mark.parametrize(
    "obj", [None, "", "   ", "{", "[1]", "[" * 100_000, 42, ["deployed"], {"result": "exploded"}, {"todo": 5}]
)
def test_parse_result_unreadable_is_unknown(obj: Any) -> None:
    answer = contract.parse_result(obj)
    assert answer["result"] == "unknown"
    assert answer["todo"] == [] and answer["service"] == ""


@pytest.mark.parametrize(
    ("text", "steps", "problem"),
    [
        ("health,switch", ["health", "switch"], None),
        ("image,,record,", ["image", "record"], None),
        ("", [], None),
        ("deploy", [], "unknown step 'deploy'"),
        ("record,health", [], "steps must be in rollout order"),
        ("health,health", [], "step 'health' is given twice"),
    ],
)
def test_split_steps(text: str, steps: list[str], problem: str | None) -> None:
    got, said = contract.split_steps(text)
    assert got == steps
    assert (said is None) if problem is None else (said is not None and said.startswith(problem))


def test_service_names() -> None:
    assert contract.service_names("lark-service") == {
        "id": "lark_service",
        "db_name": "lark_service",
        "db_owner": "lark_service_owner",
        "db_user": "lark_service",
        "redis_user": "lark-service",
        "redis_key_prefix": "lark-service:",
        "db_password_var": "vault_lark_service_db_password",  # pragma: allowlist secret
        "db_owner_password_var": "vault_lark_service_db_owner_password",  # pragma: allowlist secret
        "redis_password_var": "vault_lark_service_redis_password",  # pragma: allowlist secret
        "backend": "be_lark_service",
        "live_env_var": "SLIPWAY_LIVE_lark_service",
        "blue": "lark-service-blue",
        "green": "lark-service-green",
    }
    with pytest.raises(InputRefused, match="is not a service name"):
        contract.service_names("Lark")


def test_state_paths() -> None:
    paths = contract.StatePaths("/state", "notes-api")
    assert paths.dir == "/state/notes-api"
    assert (paths.state, paths.history, paths.lock) == (
        "/state/notes-api/state.json", "/state/notes-api/history.jsonl", "/state/notes-api/lock.json")
    assert paths.run("r1") == "/state/notes-api/runs/r1.json"
    assert paths.log("r1", "migrate") == "/state/notes-api/logs/r1-migrate.log"
    with pytest.raises(InputRefused):
        contract.StatePaths("/state", "../etc")
    with pytest.raises(InputRefused):
        paths.run("../../etc/passwd")
