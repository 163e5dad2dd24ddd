"""slipway.core.preflight, run for real: ansible-playbook on localhost against a throw-away project (its own
inventories/), no fakes. The playbooks' own refusals (unknown env, service, version) are in tests/playbooks.

What the playbooks rely on: a deploy or rollback request that passes gets a run id (the one given, or 12 fresh
hex digits, different each run); the check reads only the registry's names, so an entry whose secrets the
controller cannot resolve still passes; bad input fails naming the problem and the known values."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from plugin_loader import dump_task, loaded, play

from slipway_core import contract

REGISTRY = """\
all:
  children:
    demo:
      hosts:
        demo-1:  # never contacted: the play runs on localhost
      vars:
        slipway_services:
          api:
            image: registry.example.com/team/api
            version: v1.0.0
            port: 8000
            domain: api.example.com
            secret_env: {TOKEN: "{{ vault_not_on_this_controller }}"}
"""


def project(tmp_path: Path) -> str:
    """inventories/demo/hosts.yml (the registry above) and inventories/notes/ (no hosts.yml: not an env)."""
    hosts = tmp_path / "inventories" / "demo" / "hosts.yml"
    hosts.parent.mkdir(parents=True)
    hosts.write_text(REGISTRY, encoding="utf-8")
    (tmp_path / "inventories" / "notes").mkdir()
    return str(hosts)


def preflight(tmp_path: Path, *extra: str, **args: str) -> tuple[int, str, dict[str, object]]:
    """Run the action with `args`; `extra` goes to ansible-playbook (e.g. -e key=value). Returns the exit code,
    stdout and the task's result (also when it failed)."""
    out = tmp_path / "out.json"
    lines = "".join(f"\n            {key}: {json.dumps(value)}" for key, value in args.items())
    result = play(tmp_path, f"""
        - name: Preflight
          slipway.core.preflight:
            inventories: "{tmp_path}/inventories"{lines}
          register: checked
          ignore_errors: true
    """ + dump_task("checked", out) + """
        - name: Fail as the check did
          ansible.builtin.fail:
            msg: refused
          when: checked is failed
    """, *extra, inventory=project(tmp_path))
    return result.returncode, result.stdout, loaded(out) if out.exists() else {}


def test_a_deploy_request_that_passes_gets_a_fresh_run_id_each_time(tmp_path: Path) -> None:
    rc, stdout, first = preflight(tmp_path, request="deploy", env="demo", service="api", version="v2.0.0")
    assert rc == 0, stdout
    assert first["changed"] is False
    assert re.fullmatch(r"[0-9a-f]{12}", str(first["run_id"]))
    (tmp_path / "inventories").rename(tmp_path / "old")
    rc, stdout, second = preflight(tmp_path, request="rollback", env="demo", service="api")
    assert rc == 0, stdout
    assert re.fullmatch(r"[0-9a-f]{12}", str(second["run_id"])) and second["run_id"] != first["run_id"]


def test_a_given_run_id_is_kept_and_a_bad_one_refused(tmp_path: Path) -> None:
    rc, stdout, checked = preflight(tmp_path, request="deploy", env="demo", run_id="gh-4711.2")
    assert rc == 0, stdout
    assert checked["run_id"] == "gh-4711.2"
    (tmp_path / "inventories").rename(tmp_path / "old")
    rc, _, checked = preflight(tmp_path, request="deploy", env="demo", run_id="a;rm -rf /")
    assert rc != 0
    assert checked["msg"] == "run id 'a;rm -rf /' is not valid: " + contract.RUN_ID_RULE


def test_the_check_never_resolves_the_registry_secrets(tmp_path: Path) -> None:
    """vault_not_on_this_controller is undefined: only the names of the registry are read."""
    rc, stdout, _ = preflight(tmp_path, request="deploy", env="demo", service="api")
    assert rc == 0, stdout
    assert "vault_not_on_this_controller" not in stdout


def test_env_request_checks_the_environment_only(tmp_path: Path) -> None:
    rc, stdout, checked = preflight(tmp_path, env="demo", service="not-checked")
    assert rc == 0, stdout
    assert "run_id" not in checked
    (tmp_path / "inventories").rename(tmp_path / "old")
    rc, _, checked = preflight(tmp_path, env="notes")
    assert rc != 0
    assert checked["msg"] == f"environment 'notes' is unknown: use one of: demo ({contract.ENV_RULE})"


REGISTRY_OF_DEMO = contract.registry_of("demo")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"request": "deploy", "service": "web"}, f"service 'web' is not in {REGISTRY_OF_DEMO}; known: api"),
        ({"request": "deploy", "service": ""}, f"service '' is not a service name: {contract.SERVICE_RULE}"),
        ({"request": "deploy", "version": "v2.0.0"},
         "a version ('v2.0.0') was given without a service: name the service to deploy at that version, one of: api"),
        ({"request": "deploy", "service": "api", "version": "v2 final"},
         f"version 'v2 final' is not an image tag: {contract.TAG_RULE}"),
        ({"request": "rollback"}, "a rollback needs a service: one of: api"),
        ({"request": "status", "service": "a;b"}, f"service 'a;b' is not a service name: {contract.SERVICE_RULE}"),
        ({"request": "status", "service": "web"}, f"service 'web' is not in {REGISTRY_OF_DEMO}; known: api"),
    ],
)
def test_bad_requests_name_the_problem(tmp_path: Path, args: dict[str, str], message: str) -> None:
    rc, _, checked = preflight(tmp_path, env="demo", **args)
    assert rc != 0, args
    assert checked["msg"] == message


def test_a_status_request_takes_any_known_service_or_none(tmp_path: Path) -> None:
    for number, args in enumerate([{"service": "api"}, {}, {"service": "api", "version": "not checked"}]):
        case = tmp_path / str(number)
        case.mkdir()
        rc, stdout, checked = preflight(case, request="status", env="demo", **args)
        assert rc == 0, stdout
        assert "run_id" not in checked


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("version=v1.2.3 ", f"version 'v1.2.3 ' is not an image tag: {contract.TAG_RULE}"),
        ("version=v1.2.3 --extra-vars=x", f"version 'v1.2.3 --extra-vars=x' is not an image tag: {contract.TAG_RULE}"),
        ("env=demo\n", f"environment 'demo\\n' is unknown: use one of: demo ({contract.ENV_RULE})"),
        ("other=1 --extra-vars=x", "extra variable '--extra-vars' (from -e 'other=1 --extra-vars=x') is not a"),
        ('label="a b"', "-e 'label=\"a b\"' is not read as typed"),
    ],
)
def test_key_value_extra_vars_are_read_as_typed(tmp_path: Path, raw: str, message: str) -> None:
    """Ansible's key=value parser drops blanks, newlines and quotes: the action reads each -e as typed."""
    rc, _, checked = preflight(tmp_path, "-e", raw, env="demo")
    assert rc != 0
    assert str(checked["msg"]).startswith(message)


def test_key_value_and_json_extra_vars_typed_cleanly_pass(tmp_path: Path) -> None:
    rc, stdout, _ = preflight(tmp_path, "-e", "env=demo service=api", "-e", '{"label": "a b "}', env="demo")
    assert rc == 0, stdout


def test_a_registry_written_as_an_expression_is_resolved_as_the_host_sees_it(tmp_path: Path) -> None:
    """`base` is a variable of demo-1, not of localhost (where the check runs)."""
    project(tmp_path)
    hosts = tmp_path / "inventories" / "demo" / "hosts.yml"
    hosts.write_text(
        "all:\n  children:\n    demo:\n      hosts:\n        demo-1:\n      vars:\n"
        "        base: {api: {image: r.example.com/api, version: v1, port: 80, domain: api.example.com}}\n"
        '        slipway_services: "{{ base }}"\n',
        encoding="utf-8",
    )
    out = tmp_path / "out.json"
    result = play(tmp_path, f"""
        - name: Preflight
          slipway.core.preflight:
            inventories: "{tmp_path}/inventories"
            request: deploy
            env: demo
            service: web
          register: checked
          ignore_errors: true
    """ + dump_task("checked", out), inventory=str(hosts))
    assert result.returncode == 0, result.stdout
    assert loaded(out)["msg"] == f"service 'web' is not in {REGISTRY_OF_DEMO}; known: api"
