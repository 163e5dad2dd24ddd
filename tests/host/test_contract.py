"""contract.py as the host program relies on it: the input rules, the result schema, derived names and steps."""

from __future__ import annotations

import json
from typing import Any

import pytest

from slipway_core import contract
from slipway_core.contract import InputRefused

KNOWN = ["notes-api", "billing"]


@pytest.mark.parametrize("name", ["notes-api", "ab", "a" + "b" * 38 + "c"])
def test_service_names_accepted(name: str) -> None:
    assert contract.check_service_name(name) == name


@pytest.mark.parametrize("name", ["Notes", "a", "notes-", "-notes", "notes_api", "notes\n", 7, None, "a" * 41])
def test_service_names_refused(name: Any) -> None:
    with pytest.raises(InputRefused, match="is not a service name"):
        contract.check_service_name(name)


@pytest.mark.parametrize(
    ("version", "problem"),
    [("v1.2", "looks like a version"), ("1.2.3", "looks like a version"), ("latest", "is a moving tag"),
     ("-x", "is not an image tag"), (None, "is not an image tag"), ("v1.2.3 ", "is not an image tag")],
)
def test_versions_refused(version: Any, problem: str) -> None:
    with pytest.raises(InputRefused, match=problem):
        contract.check_version(version)


def test_versions_and_tags_accepted() -> None:
    assert contract.check_version("v1.2.3") == "v1.2.3"
    assert contract.check_version("main-4f2a9c1") == "main-4f2a9c1"
    assert contract.check_image_tag("latest") == "latest"
    with pytest.raises(InputRefused):
        contract.check_image_tag("")


def test_known_service_run_id_env() -> None:
    assert contract.check_known_service("billing", KNOWN, "here") == "billing"
    with pytest.raises(InputRefused, match="is not in here; known: billing, notes-api"):
        contract.check_known_service("shop", KNOWN, "here")
    with pytest.raises(InputRefused, match=r"known: \(none\)"):
        contract.check_known_service("shop", [], "here")
    assert contract.check_run_id("20260101-abc.1") == "20260101-abc.1"
    with pytest.raises(InputRefused, match=r"run id '\.\./x' is not valid"):
        contract.check_run_id("../x")
    assert contract.check_env_name("staging", ["staging"]) == "staging"
    with pytest.raises(InputRefused, match=r"environment '' is unknown: use one of: staging"):
        contract.check_env_name(None, ["staging"])
    assert contract.env_names(["staging", "Prod", "prod", ".git"]) == ["prod", "staging"]
    assert "inventories/staging/" in contract.registry_of("staging")


def test_requests() -> None:
    contract.check_request(None, None, KNOWN, "here")
    contract.check_request("notes-api", "v1.0.0", KNOWN, "here")
    with pytest.raises(InputRefused, match="a rollback needs a service"):
        contract.check_request(None, None, KNOWN, "here", rollback=True)
    with pytest.raises(InputRefused, match="was given without a service"):
        contract.check_request(None, "", KNOWN, "here")
    with pytest.raises(InputRefused, match="looks like a version"):
        contract.check_request("notes-api", "2.0", KNOWN, "here")


def test_raw_extra_vars() -> None:
    contract.check_raw_extra_var("version=v1.2.3", {"version": "v1.2.3"})
    with pytest.raises(InputRefused, match=r"version 'v1\.2\.3 ' is not an image tag"):
        contract.check_raw_extra_var("version=v1.2.3 ", {"version": "v1.2.3"})
    with pytest.raises(InputRefused, match="service 'x y' is not a service name"):
        contract.check_raw_extra_var("service=x y", {"service": "x", "y!": None})
    with pytest.raises(InputRefused, match="environment 'Prod ' is unknown"):
        contract.check_raw_extra_var("env=Prod ", {"env": "Prod"}, ["prod"])
    with pytest.raises(InputRefused, match="run id"):
        contract.check_raw_extra_var("slipway_run_id=a b", {"slipway_run_id": "a"})
    with pytest.raises(InputRefused, match="is not a variable name"):
        contract.check_raw_extra_var("--extra-vars=x", {"--extra-vars": "x"})
    with pytest.raises(InputRefused, match="is not read as typed"):
        contract.check_raw_extra_var("note='a'", {"note": "a"})


def test_result_schema_and_parsing() -> None:
    answer = contract.result("notes-api", "deployed", version="v1", bogus=1)
    assert set(answer) == set(contract.RESULT_KEYS)
    assert answer["version"] == "v1"
    assert "bogus" not in answer

    parsed = contract.parse_result(json.dumps({"service": "notes-api", "result": "continue", "todo": ["switch", 3,
                                                                                                     "x"]}))
    assert (parsed["result"], parsed["todo"]) == ("continue", ["switch"])
    assert contract.parse_result({"result": "exploded", "todo": "x"})["result"] == "unknown"
    for unreadable in ("", "{", "[1]", None, "[" * 100000):
        gone = contract.parse_result(unreadable)
        assert (gone["result"], gone["message"]) == ("unknown", "no answer from the host program")


def test_derived_names() -> None:
    names = contract.service_names("lark-service")
    assert (names["id"], names["backend"], names["live_env_var"], names["green"]) == (
        "lark_service", "be_lark_service", "SLIPWAY_LIVE_lark_service", "lark-service-green")
    assert contract.kept_container_name("a-b", "blue") == "a-b-blue-kept"
    assert len(contract.migration_container_name("a" * 40, "r" * 64)) == 63
    assert contract.backup_file("notes_api", "20260101") == "notes_api-20260101.dump"
    assert contract.other_colour("blue") == "green" and contract.other_colour("green") == "blue"
    assert contract.shown("x" * 50).endswith("...'") and contract.shown(["y"] * 50).endswith("...")


def test_split_steps() -> None:
    assert contract.split_steps("health,switch,") == (["health", "switch"], None)
    steps = ", ".join(contract.STEPS)
    assert contract.split_steps("deploy")[1] == f"unknown step 'deploy'; steps are {steps}"
    assert contract.split_steps("record,health")[1] == f"steps must be in rollout order: {steps}"
    assert contract.split_steps("health,health")[1] == f"step 'health' is given twice; steps are {steps}"
