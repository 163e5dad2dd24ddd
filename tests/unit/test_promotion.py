"""Promotion to production: a staging tag is promoted only when it records a successful staging deploy of its own
commit, and only when the production inventory at that commit runs the versions staging deployed."""

from __future__ import annotations

import io
import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from slipway import cli, promotion
from slipway.exitcodes import InputError

VAULT_PASSWORD = "promotion-test-vault-pw"  # pragma: allowlist secret


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def registry(versions: dict[str, str]) -> str:
    lines = ["slipway_services:"]
    for name, version in versions.items():
        lines += [
            f"  {name}:",
            f"    image: registry.example.com/acme/{name}",
            f'    version: "{version}"',
            "    port: 8000",
            f"    domain: {name}.example.com",
        ]
    return "\n".join(lines) + "\n"


def environment(root: Path, env: str, versions: dict[str, str], hosts: int = 2) -> None:
    entries = "".join(f"        {env}-{i}:\n          ansible_host: 192.0.2.{i}\n" for i in range(1, hosts + 1))
    (root / "inventories" / env).mkdir(parents=True, exist_ok=True)
    (root / "inventories" / env / "hosts.yml").write_text(
        f"all:\n  children:\n    {env}:\n      hosts:\n{entries}", encoding="utf-8"
    )
    write(root / "inventories" / env / "group_vars" / env / "main.yml", registry(versions))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """An operations repository whose staging and production registries agree, committed."""
    root = tmp_path / "ops"
    write(root / "ansible.cfg", "[defaults]\n")
    environment(root, "staging", {"lark-service": "v1.4.2", "heron": "v2.0.0"})
    environment(root, "production", {"lark-service": "v1.4.2", "heron": "v2.0.0"})
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "state")
    return root


def staging_tag(repo: Path, tag: str = "v1.4.3", at: str = "HEAD", **overrides: object) -> str:
    """Tag `at` the way the staging workflow does after a successful deploy: an annotated tag whose message is
    promotion.record_message over the staging inventory at that commit."""
    sha = git(repo, "rev-parse", f"{at}^{{commit}}")
    services = promotion.inventory_services(repo / "inventories", "staging")
    message = promotion.record_message(tag=tag, commit=sha, services=services, run_url="https://ci.example/run/7")
    if overrides:
        head, _mark, body = message.partition(promotion.RECORD_MARK)
        data = json.loads(body)
        data.update(overrides)
        message = head + promotion.RECORD_MARK + " " + json.dumps(data)
    git(repo, "tag", "-a", tag, "-m", message, sha)
    return sha


def commit_production(repo: Path, versions: dict[str, str]) -> None:
    write(repo / "inventories/production/group_vars/production/main.yml", registry(versions))
    git(repo, "commit", "-q", "-am", "production versions")


def test_a_matching_tag_is_accepted(repo: Path) -> None:
    sha = staging_tag(repo)
    record = promotion.check_promotion(repo, "v1.4.3")
    assert record.commit == sha
    assert record.services == {
        "heron": {"image": "registry.example.com/acme/heron", "version": "v2.0.0"},
        "lark-service": {"image": "registry.example.com/acme/lark-service", "version": "v1.4.2"},
    }


def test_a_lightweight_tag_has_no_staging_record(repo: Path) -> None:
    git(repo, "tag", "v1.4.3")  # as the old workflow pushed it, before the deploy
    with pytest.raises(InputError, match=r"v1\.4\.3: no record of a successful staging deploy"):
        promotion.check_promotion(repo, "v1.4.3")


def test_an_annotated_tag_without_a_record_is_refused(repo: Path) -> None:
    git(repo, "tag", "-a", "v1.4.3", "-m", "hand-made tag")
    with pytest.raises(InputError, match="no record of a successful staging deploy"):
        promotion.check_promotion(repo, "v1.4.3")


def test_a_record_of_a_failed_deploy_is_refused(repo: Path) -> None:
    staging_tag(repo, result="failed")
    with pytest.raises(InputError, match="not a successful staging deploy"):
        promotion.check_promotion(repo, "v1.4.3")


def test_a_record_of_another_commit_is_refused(repo: Path) -> None:
    staging_tag(repo, commit="0" * 40)
    with pytest.raises(InputError, match="records a deploy of 000000000000, not of the tagged commit"):
        promotion.check_promotion(repo, "v1.4.3")


def test_a_missing_tag_is_refused(repo: Path) -> None:
    with pytest.raises(InputError, match=r"v9\.9\.9: no such tag"):
        promotion.check_promotion(repo, "v9.9.9")


def test_each_version_difference_is_named(repo: Path) -> None:
    commit_production(repo, {"lark-service": "v1.5.0", "kite": "v1.0.0"})  # heron dropped, kite added
    staging_tag(repo)
    with pytest.raises(InputError) as info:
        promotion.check_promotion(repo, "v1.4.3")
    text = str(info.value)
    assert "production inventory differs from what staging deployed at v1.4.3" in text
    assert "lark-service: staging deployed v1.4.2, production has v1.5.0" in text
    assert "kite: production has v1.0.0, staging did not deploy it" in text
    # A service staging ran and production does not list is no version difference: production does not run it.
    assert "heron" not in text


def test_the_inventory_is_read_at_the_tagged_commit_not_the_working_tree(repo: Path) -> None:
    staging_tag(repo)
    commit_production(repo, {"lark-service": "v9.0.0", "heron": "v2.0.0"})  # a later commit on main
    assert promotion.check_promotion(repo, "v1.4.3").tag == "v1.4.3"


def test_an_image_difference_is_named(repo: Path) -> None:
    path = repo / "inventories/production/group_vars/production/main.yml"
    path.write_text(path.read_text(encoding="utf-8").replace("acme/heron", "other/heron"), encoding="utf-8")
    git(repo, "commit", "-q", "-am", "another registry")
    staging_tag(repo)
    with pytest.raises(InputError, match=r"heron: staging deployed image registry\.example\.com/acme/heron"):
        promotion.check_promotion(repo, "v1.4.3")


def test_hosts_that_disagree_are_all_listed(repo: Path) -> None:
    write(repo / "inventories/production/host_vars/production-2.yml", registry({"lark-service": "v1.4.1"}))
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "one host pinned")
    staging_tag(repo)
    with pytest.raises(InputError, match=r"lark-service: staging deployed v1\.4\.2, production has v1\.4\.1, v1\.4\.2"):
        promotion.check_promotion(repo, "v1.4.3")


def test_versions_are_read_through_ansible_templating_and_vault(repo: Path) -> None:
    """Ansible's own inventory and variable loading: a templated version and a vault-encrypted group_vars file
    (its password from SLIPWAY_VAULT_PASSWORD) are read as ansible-playbook reads them."""
    vars_dir = repo / "inventories/production/group_vars/production"
    write(vars_dir / "main.yml", registry({"lark-service": "{{ lark_version }}", "heron": "v2.0.0"}))
    write(vars_dir / "vault.yml", "lark_version: v1.4.2\n")
    password = repo.parent / "vault-pw"
    password.write_text(VAULT_PASSWORD + "\n", encoding="utf-8")
    subprocess.run(
        ["ansible-vault", "encrypt", "--vault-password-file", str(password), str(vars_dir / "vault.yml")],
        check=True,
        capture_output=True,
    )
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "vaulted version")
    staging_tag(repo)
    with pytest.raises(InputError, match=r"vault-encrypted.*SLIPWAY_VAULT_PASSWORD"):
        promotion.check_promotion(repo, "v1.4.3")
    assert promotion.check_promotion(repo, "v1.4.3", vault_password=VAULT_PASSWORD).tag == "v1.4.3"


def test_record_message_round_trip() -> None:
    services = {"lark-service": {"image": "r/lark", "version": "v1.4.2"}}
    message = promotion.record_message(tag="v1.4.3", commit="a" * 40, services=services, run_url="https://x/1")
    assert message.splitlines()[0] == f"v1.4.3: staging deploy succeeded at {'a' * 12}"
    record = promotion.parse_record(message, "v1.4.3")
    assert (record.result, record.commit, record.services, record.run_url) == (
        "deployed",
        "a" * 40,
        services,
        "https://x/1",
    )


def run_cli(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(argv, env, streams=cli.Streams(out, err))
    return code, out.getvalue(), err.getvalue()


def test_cli_record_then_check(repo: Path) -> None:
    sha = git(repo, "rev-parse", "HEAD")
    base = ["--env", "staging", "--project-dir", str(repo)]
    code, out, err = run_cli(
        ["release", "record", *base, "--tag", "v1.4.3", "--commit", sha, "--run-url", "https://ci.example/run/7"],
        {},
    )
    assert (code, err) == (0, "")
    assert promotion.parse_record(out, "v1.4.3").services["heron"]["version"] == "v2.0.0"
    git(repo, "tag", "-a", "v1.4.3", "-m", out, sha)

    check = ["release", "check", "--env", "production", "--project-dir", str(repo), "--tag", "v1.4.3"]
    assert run_cli(check, {})[0] == 0
    commit_production(repo, {"lark-service": "v1.5.0", "heron": "v2.0.0"})
    git(repo, "tag", "-a", "v1.5.1", "-m", out, "HEAD")  # another tag's record, copied
    code, _out, err = run_cli([*check[:-1], "v1.5.1"], {})
    assert code == 2
    assert "its record is of 'v1.4.3', not of this tag" in err


def test_cli_check_refuses_with_the_differences(repo: Path) -> None:
    commit_production(repo, {"lark-service": "v1.5.0", "heron": "v2.0.1"})
    staging_tag(repo)
    code, _out, err = run_cli(
        ["release", "check", "--env", "production", "--project-dir", str(repo), "--tag", "v1.4.3"], {}
    )
    assert code == 2
    assert "lark-service: staging deployed v1.4.2, production has v1.5.0" in err
    assert "heron: staging deployed v2.0.0, production has v2.0.1" in err


def test_cli_check_is_for_production_and_record_for_staging(repo: Path) -> None:
    code, _out, err = run_cli(
        ["release", "check", "--env", "staging", "--project-dir", str(repo), "--tag", "v1.4.3"], {}
    )
    assert code == 2
    assert "release check is for --env production" in err


@pytest.mark.parametrize(
    ("argv", "why"),
    [
        (["record", "--env", "production", "--tag", "v1.4.3", "--commit", "a" * 40], "release record is for --env"),
        (["record", "--env", "staging", "--tag", "v1.4.3", "--commit", "HEAD"], "not a 40-hex commit id"),
        (["record", "--env", "staging", "--tag", "1.4.3; rm -rf /", "--commit", "a" * 40], "not a release tag"),
        (["check", "--env", "production", "--tag", "v1.4.3"], "no such tag"),
    ],
)
def test_cli_refusals(repo: Path, argv: list[str], why: str) -> None:
    code, out, err = run_cli(["release", *argv, "--project-dir", str(repo)], {})
    assert (code, out) == (2, "")
    assert why in err
    assert len(err.splitlines()) == 1


def test_a_record_that_is_not_json_is_refused() -> None:
    with pytest.raises(InputError, match="not valid JSON"):
        promotion.parse_record(f"x\n{promotion.RECORD_MARK} {{nope\n", "v1.4.3")
    with pytest.raises(InputError, match="not a schema 1 record"):
        promotion.parse_record(f"{promotion.RECORD_MARK} {{}}\n", "v1.4.3")
