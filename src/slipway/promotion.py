"""Promotion records: what a staging deploy ran, kept in its staging tag, checked before production.

- After `slipway deploy --env staging` succeeded, `slipway release record --env staging --tag T --commit C` prints
  the message of the annotated staging tag T: one summary line, then a line `slipway-staging-record: {json}` with
  the result, the commit, the tag, the workflow run and, per service, the image and version staging deployed.
  The versions are the staging inventory's `slipway_services` at that commit, read with Ansible's own inventory
  and variable loading (group_vars, host_vars, vault files, templated values), as ansible-playbook read them: a
  successful deploy converged every staging host to exactly these.
- `slipway release check --env production --tag T` refuses the promotion unless T is an annotated tag with a
  record of a successful staging deploy of T's own commit, and unless the production inventory at that commit
  (read the same way, from the commit, not the working tree) lists for every production service the image and
  version staging deployed. Each difference is named. A service staging ran that production does not list is no
  difference (production does not run it).
Vault-encrypted inventory files are read with SLIPWAY_VAULT_PASSWORD.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import tarfile
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from slipway.exitcodes import ExitCode, InputError
from slipway.secrets import VAULT_PASSWORD

RECORD_MARK = "slipway-staging-record:"
SCHEMA = 1
DEPLOYED = "deployed"

Services = dict[str, dict[str, str]]


@dataclass(frozen=True)
class Record:
    """A staging deploy as its tag records it."""

    tag: str
    commit: str
    result: str
    run_url: str
    services: Services


def _ansible_error(exc: Exception, env: str) -> InputError:
    text = " ".join(str(exc).split())[:300]
    if "vault" in text.lower() and ("password" in text.lower() or "secret" in text.lower()):
        return InputError(
            f"inventories/{env} holds vault-encrypted data: set {VAULT_PASSWORD} to read its versions ({text})"
        )
    return InputError(f"inventories/{env}: Ansible cannot read it ({text})")


def inventory_services(inventories: Path, env: str, vault_password: str | None = None) -> Services:
    """Per service of `env`'s hosts: {"image", "version"}, each the value ansible-playbook would use (values that
    differ between hosts are listed sorted, joined by ", ")."""
    # Imported here: ansible-core reads its configuration on import, and only these commands need it.
    from ansible.errors import AnsibleError  # noqa: PLC0415
    from ansible.inventory.manager import InventoryManager  # noqa: PLC0415
    from ansible.parsing.dataloader import DataLoader  # noqa: PLC0415
    from ansible.parsing.vault import VaultSecret  # noqa: PLC0415
    from ansible.plugins.loader import init_plugin_loader  # noqa: PLC0415
    from ansible.template import Templar  # noqa: PLC0415
    from ansible.vars.manager import VariableManager  # noqa: PLC0415

    hosts_file = inventories / env / "hosts.yml"
    if not hosts_file.is_file():
        raise InputError(f"inventories/{env}/hosts.yml is missing")
    with warnings.catch_warnings():  # "already configured", when this process has set Ansible up before
        warnings.simplefilter("ignore", UserWarning)
        init_plugin_loader()  # what ansible's own commands do first (the inventory and vars plugins, the cache)
    loader = DataLoader()
    if vault_password:
        loader.set_vault_secrets([("default", VaultSecret(vault_password.encode()))])
    seen: dict[str, dict[str, set[str]]] = {}
    try:
        inventory = InventoryManager(loader=loader, sources=[str(hosts_file)])
        variables = VariableManager(loader=loader, inventory=inventory)
        hosts = inventory.get_hosts(env)
        if not hosts:
            raise InputError(f"inventories/{env}/hosts.yml lists no host in group {env}")
        for host in hosts:
            host_vars = variables.get_vars(host=host)
            registry = host_vars.get("slipway_services") or {}
            if not isinstance(registry, Mapping):
                raise InputError(f"inventories/{env}: slipway_services of {host.name} is not a mapping")
            templar = Templar(loader=loader, variables=host_vars)
            for name, spec in registry.items():
                fields = seen.setdefault(str(name), {"image": set(), "version": set()})
                for key in ("image", "version"):
                    value = spec.get(key, "") if isinstance(spec, Mapping) else ""
                    fields[key].add(str(templar.template(value)))
    except AnsibleError as exc:
        raise _ansible_error(exc, env) from exc
    return {name: {k: ", ".join(sorted(v)) for k, v in fields.items()} for name, fields in sorted(seen.items())}


def record_message(*, tag: str, commit: str, services: Services, run_url: str) -> str:
    """The message of the annotated staging tag: a summary line, then the record."""
    data = {
        "schema": SCHEMA,
        "env": "staging",
        "result": DEPLOYED,
        "tag": tag,
        "commit": commit,
        "run_url": run_url,
        "services": services,
    }
    summary = ", ".join(f"{name} {spec['version']}" for name, spec in services.items()) or "no services"
    return (
        f"{tag}: staging deploy succeeded at {commit[:12]}\n\n{summary}\n{run_url}\n\n"
        f"{RECORD_MARK} {json.dumps(data, sort_keys=True)}\n"
    )


def _no_record(tag: str, why: str) -> InputError:
    return InputError(
        f"--tag {tag}: no record of a successful staging deploy ({why}); promote a tag the staging workflow "
        "pushed after its deploy succeeded"
    )


def parse_record(message: str, tag: str) -> Record:
    """The record in a staging tag's message, or an InputError saying why there is none to promote."""
    lines = [line for line in message.splitlines() if line.startswith(RECORD_MARK)]
    if not lines:
        raise _no_record(tag, "its message holds none")
    try:
        data = json.loads(lines[-1][len(RECORD_MARK) :])
    except ValueError as exc:
        raise _no_record(tag, "its record is not valid JSON") from exc
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or not isinstance(data.get("services"), dict):
        raise _no_record(tag, f"not a schema {SCHEMA} record")
    services: Services = {}
    for name, spec in data["services"].items():
        if not isinstance(spec, dict):
            raise _no_record(tag, f"service {str(name)[:40]!r} is not a mapping")
        services[str(name)] = {"image": str(spec.get("image", "")), "version": str(spec.get("version", ""))}
    return Record(
        tag=str(data.get("tag", "")),
        commit=str(data.get("commit", "")),
        result=str(data.get("result", "")),
        run_url=str(data.get("run_url", "")),
        services=services,
    )


def differences(staged: Services, production: Services) -> list[str]:
    """One line per production service whose image or version is not what staging deployed."""
    found: list[str] = []
    for name, spec in sorted(production.items()):
        ran = staged.get(name)
        if ran is None:
            found.append(f"{name}: production has {spec['version']}, staging did not deploy it")
            continue
        if spec["image"] != ran["image"]:
            found.append(f"{name}: staging deployed image {ran['image']}, production has {spec['image']}")
        if spec["version"] != ran["version"]:
            found.append(f"{name}: staging deployed {ran['version']}, production has {spec['version']}")
    return found


def _git(project: Path, *args: str, binary: bool = False) -> subprocess.CompletedProcess[Any]:
    try:
        return subprocess.run(  # noqa: S603 - fixed arguments
            ["git", "-C", str(project), *args],  # noqa: S607 - git from PATH
            check=True,
            capture_output=True,
            text=not binary,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise InputError(f"git {args[0]} failed in {project} ({exc.__class__.__name__})") from exc


def read_tag(project: Path, tag: str) -> tuple[str, str, str]:
    """(object type, commit, message) of refs/tags/<tag>: type "tag" for an annotated tag, "commit" for a
    lightweight one (no message)."""
    fmt = "--format=%(objecttype) %(objectname) %(*objectname)%0a%(contents)"
    done = _git(project, "for-each-ref", fmt, f"refs/tags/{tag}")
    if not done.stdout.strip():
        raise InputError(f"--tag {tag}: no such tag in this repository")
    head, _newline, message = str(done.stdout).partition("\n")
    parts = head.split()
    kind = parts[0]
    commit = parts[2] if kind == "tag" and len(parts) > 2 else parts[1]
    return kind, commit, message


def _tree_at(project: Path, commit: str, into: Path) -> Path:
    """inventories/ as it is at `commit`, extracted under `into`."""
    archive = _git(project, "archive", "--format=tar", commit, "inventories", binary=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into / "inventories"


def check_promotion(project: Path, tag: str, vault_password: str | None = None) -> Record:
    """The staging record of `tag`, when production may be deployed from it; else an InputError saying why."""
    kind, commit, message = read_tag(project, tag)
    if kind != "tag":
        raise _no_record(tag, "a lightweight tag, as pushed before its deploy")
    record = parse_record(message, tag)
    if record.result != DEPLOYED:
        raise InputError(f"--tag {tag}: its record is not a successful staging deploy (result {record.result[:40]!r})")
    if record.tag != tag:
        raise InputError(f"--tag {tag}: its record is of {record.tag[:40]!r}, not of this tag")
    if record.commit != commit:
        raise InputError(
            f"--tag {tag}: its record records a deploy of {record.commit[:12]}, not of the tagged commit {commit[:12]}"
        )
    with tempfile.TemporaryDirectory(prefix="slipway-promotion-") as tmp:
        production = inventory_services(_tree_at(project, commit, Path(tmp)), "production", vault_password)
    found = differences(record.services, production)
    if found:
        raise InputError(
            f"--tag {tag}: the production inventory differs from what staging deployed at {tag}: " + "; ".join(found)
        )
    return record


def add_parsers(release_sub: Any, common: argparse.ArgumentParser, epilog: str) -> None:
    """`slipway release record` and `slipway release check`."""
    record = release_sub.add_parser(
        "record",
        parents=[common],
        help="after a successful staging deploy: print the staging tag's message (the record of what it ran)",
        description=__doc__,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    record.add_argument("--tag", required=True, help="the staging tag this deploy gets")
    record.add_argument("--commit", required=True, help="the commit that was deployed (40 hex digits)")
    record.add_argument("--run-url", default="", help="the workflow run that deployed it")
    check = release_sub.add_parser(
        "check",
        parents=[common],
        help="refuse a promotion to production without a matching successful staging deploy",
        description=__doc__,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("--tag", required=True, help="the staging tag to promote")


def _project(args: argparse.Namespace) -> Path:
    from slipway.validation import find_project_dir  # noqa: PLC0415

    return Path(args.project_dir).resolve() if args.project_dir else find_project_dir(Path.cwd())


def run(args: argparse.Namespace, environ: Mapping[str, str], out: TextIO, err: TextIO) -> int:
    """`slipway release record|check`: exit 0, or 2 with one line saying why."""
    from slipway import tags  # noqa: PLC0415

    try:
        if tags.parse(args.tag) is None:
            raise InputError(f"--tag {args.tag[:40]!r}: not a release tag")
        vault_password = environ.get(VAULT_PASSWORD) or None
        if args.release_command == "record":
            if args.env != "staging":
                raise InputError("release record is for --env staging (the record of a staging deploy)")
            if len(args.commit) != 40 or any(c not in "0123456789abcdef" for c in args.commit):
                raise InputError(f"--commit {args.commit[:48]!r}: not a 40-hex commit id")
            services = inventory_services(_project(args) / "inventories", "staging", vault_password)
            out.write(record_message(tag=args.tag, commit=args.commit, services=services, run_url=args.run_url))
            return int(ExitCode.OK)
        if args.env != "production":
            raise InputError("release check is for --env production (a promotion of a staging tag)")
        record = check_promotion(_project(args), args.tag, vault_password)
    except InputError as exc:
        err.write(f"slipway: error: {exc}\n")
        return int(ExitCode.BAD_INPUT)
    versions = ", ".join(f"{name} {spec['version']}" for name, spec in record.services.items())
    out.write(
        json.dumps({"tag": record.tag, "commit": record.commit, "services": record.services}) + "\n"
        if args.json
        else f"{args.tag}: staging deployed {versions or 'no services'} at {record.commit[:12]}; production matches\n"
    )
    return int(ExitCode.OK)
