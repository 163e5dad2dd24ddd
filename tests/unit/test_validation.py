"""Input checks that run before any host is touched: every refusal says what to change."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from slipway import validation
from slipway.exitcodes import InputError

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


def test_regexes_match_the_services_filter() -> None:
    """The CLI copies the filter's NAME_RE and TAG_RE (it cannot import ansible): they must not drift."""
    source = (REPO / "collections/ansible_collections/slipway/core/plugins/filter/services.py").read_text()
    for name in ("NAME_RE", "TAG_RE"):
        match = re.search(rf'^{name} = re\.compile\(r"(.+)"\)$', source, re.M)
        assert match, name
        assert getattr(validation, name).pattern == match.group(1)


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
    with pytest.raises(InputError, match=r"unknown environment; use one of: demo, remote, sealed"):
        validation.load_environment(project, name)


def test_unknown_service_names_the_registry(project: Path) -> None:
    env = validation.load_environment(project, "demo")
    assert validation.check_service(env, "notes-api") == "notes-api"
    with pytest.raises(
        InputError, match=r"not in the services registry of demo.*known: lark-service, notes-api"
    ):
        validation.check_service(env, "billing")


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
