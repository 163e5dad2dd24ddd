"""Input checks that run before any host is touched: every refusal says what to change."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from slipway import validation
from slipway.exitcodes import InputError
from slipway_core import contract

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "version", ["v1.2.3", "v10.0.1", "sha-0a1b2c3", "main-20240101.1", "v1.2.3-rc.1", "2024_01"]
)
def test_good_versions_are_accepted(version: str) -> None:
    assert validation.check_version(version) == version


@pytest.mark.parametrize(
    ("version", "hint"),
    [
        ("v1.2.3; rm -rf /", "not an image tag"),
        ("1.2", "all three parts"),
        ("v1.2", "all three parts"),
        ("1.2.3", "all three parts"),
        ("x" * 10_000, "not an image tag"),
        ("", "not an image tag"),
        ("-v1", "not an image tag"),
        ("latest", "moving tag"),
        ("v1.2.3\n", "not an image tag"),
    ],
)
def test_bad_versions_are_refused(version: str, hint: str) -> None:
    with pytest.raises(InputError, match=hint) as info:
        validation.check_version(version)
    assert len(str(info.value)) < 300  # 10 kB of input does not come back as 10 kB of message


@pytest.mark.parametrize("name", ["ab", "notes-api", "a" * 40, "x9"])
def test_service_names_follow_the_registry_rule(name: str) -> None:
    assert validation.check_service_name(name) == name


@pytest.mark.parametrize(
    "name", ["a", "Notes", "notes-", "9lives", "a" * 41, "notes_api", "x;y", "a" * 10_000]
)
def test_bad_service_names_are_refused(name: str) -> None:
    with pytest.raises(InputError, match="not a service name"):
        validation.check_service_name(name)


@pytest.mark.parametrize(
    ("check", "value", "rule"),
    [
        (validation.check_version, "v1.2.3\n", contract.check_version),
        (validation.check_version, "latest", contract.check_version),
        (validation.check_version, "x" * 10_000, contract.check_version),
        (validation.check_service_name, "notes-api ", contract.check_service_name),
        (validation.check_service_name, "nötes", contract.check_service_name),
    ],
)
def test_refusals_carry_the_contracts_message_unchanged(
    check: Callable[[str], str], value: str, rule: Callable[[str], str]
) -> None:
    """The CLI defines no rule: its InputError is the contract's InputRefused, word for word."""
    with pytest.raises(contract.InputRefused) as refused:
        rule(value)
    with pytest.raises(InputError) as info:
        check(value)
    assert str(info.value) == str(refused.value)


def test_no_copy_of_a_rule_is_left() -> None:
    """The CLI and the services filter import the contract's rules; neither keeps its own regular expressions."""
    plugins = "collections/ansible_collections/slipway/core/plugins"
    for path in ("src/slipway/validation.py", f"{plugins}/filter/services.py", f"{plugins}/action/preflight.py"):
        source = (REPO / path).read_text()
        for name in ("NAME_RE", "TAG_RE", "ENV_RE", "RUN_ID_RE", "SEMVER_RE", "VERSION_LIKE_RE", "MUTABLE_TAGS"):
            assert not re.search(rf"\b{name}\b", source), (path, name)


def test_environment_is_read(project: Path) -> None:
    env = validation.load_environment(project, "demo")
    assert env.services == ("lark-service", "notes-api")
    assert [h.name for h in env.hosts] == ["demo-1"]
    assert not env.hosts[0].uses_ssh
    assert not env.vaulted
    remote = validation.load_environment(project, "remote")
    assert remote.hosts[0].uses_ssh
    assert remote.hosts[0].address == "192.0.2.10"
    assert validation.load_environment(project, "sealed").vaulted


@pytest.mark.parametrize("name", ["nope", "../demo", "demo/..", "DEMO", "", "d" * 10_000])
def test_unknown_env_is_refused_with_the_known_ones(project: Path, name: str) -> None:
    with pytest.raises(InputError, match=r"is unknown: use one of: demo, remote, sealed \(") as info:
        validation.load_environment(project, name)
    with pytest.raises(contract.InputRefused) as refused:
        contract.check_env_name(name, ["demo", "remote", "sealed"])
    assert str(info.value) == str(refused.value)


def test_unknown_service_names_the_registry(project: Path) -> None:
    env = validation.load_environment(project, "demo")
    assert validation.check_service(env, "notes-api") == "notes-api"
    with pytest.raises(
        InputError, match=r"not in the services registry of demo.*known: lark-service, notes-api"
    ):
        validation.check_service(env, "billing")


@pytest.mark.parametrize(
    ("service", "version", "rollback", "message"),
    [
        (None, None, False, None),
        ("notes-api", "v1.2.3", False, None),
        (None, "v1.2.3", False, "a version ('v1.2.3') was given without a service"),
        ("", None, False, "service '' is not a service name"),
        ("notes-api", "", False, "version '' is not an image tag"),
        ("billing", None, False, "'billing' is not in the services registry of demo (slipway_services in"),
        (None, None, True, "a rollback needs a service: one of: lark-service, notes-api"),
    ],
)
def test_a_request_follows_the_contract(
    project: Path, service: str | None, version: str | None, rollback: bool, message: str | None
) -> None:
    """None is "not given"; an empty --service or --version is given, and refused."""
    env = validation.load_environment(project, "demo")
    if message is None:
        validation.check_request(env, service, version, rollback)
        return
    with pytest.raises(InputError, match=re.escape(message)):
        validation.check_request(env, service, version, rollback)


def test_inventory_with_vault_tags_and_no_hosts(project: Path, writer: Callable[[Path, str], Path]) -> None:
    write = writer
    write(project / "inventories/empty/hosts.yml", "all:\n  children: {}\n")
    write(
        project / "inventories/empty/group_vars/empty/main.yml",
        "token: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  61\n",
    )
    with pytest.raises(InputError, match="lists no hosts"):
        validation.load_environment(project, "empty")


def test_broken_yaml_is_named(project: Path, writer: Callable[[Path, str], Path]) -> None:
    write = writer
    write(project / "inventories/demo/group_vars/demo/extra.yml", "a: [\n")
    with pytest.raises(InputError, match=r"extra\.yml: not valid YAML"):
        validation.load_environment(project, "demo")


def test_project_dir_is_found_upwards(project: Path, tmp_path: Path) -> None:
    deep = project / "playbooks"
    assert validation.find_project_dir(deep) == project
    with pytest.raises(InputError, match="not inside a Slipway repository"):
        validation.find_project_dir(tmp_path)


def test_missing_playbook_is_named(project: Path) -> None:
    (project / "playbooks/status.yml").unlink()
    with pytest.raises(InputError, match=r"playbooks/status.yml is missing"):
        validation.playbook_path(project, "status")
    assert validation.playbook_path(project, "deploy").name == "deploy.yml"
