"""The whole host as an attacker or an auditor sees it (issue 13): what every container may do, where every secret
is, and the runbook's "add a service" path end to end. Runs after test_full_stack.py (file order)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from scenario_tools import EDGE_ADDRESS

from slipway import container_audit

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parents[2]
PLAYBOOKS = PROJECT / "playbooks"
ACCEPTED = PROJECT / "docs" / "security" / "cis-accepted.json"
RunPlaybook = Callable[..., subprocess.CompletedProcess[str]]
VARS: dict[str, Any] = yaml.safe_load((HERE.parent / "molecule.yml").read_text())["provisioner"]["inventory"][
    "host_vars"
]["slipway-full_stack"]
SECRETS = sorted(str(v) for k, v in VARS.items() if k.startswith("vault_"))
# Slipway's own containers (the app colours are checked by name pattern below).
INFRA = {"postgres", "redis", "edge-proxy", "prometheus", "node-exporter", "postgres-exporter", "redis-exporter"}
# Where a secret could be on the host; /tmp holds the test's own list of them.
SEARCHED = "/etc /var/lib/slipway /var/lib/docker /run /var/backups /usr/local /root /home"


def inspect_all(host: Any) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = json.loads(host.check_output("docker inspect $(docker ps -q)"))
    return docs


def test_every_container_passes_the_cis_section_5_checks_but_the_accepted_ones(host: Any) -> None:
    docs = inspect_all(host)
    names = {container_audit.name_of(d) for d in docs}
    assert names >= INFRA, names
    findings = container_audit.audit(docs, json.loads(ACCEPTED.read_text()))
    print(container_audit.table(docs, findings))
    left = [f"{f.container}: CIS {f.check}: {f.reason}" for f in container_audit.counted(findings)]
    assert left == [], "\n".join(left)


def test_no_infra_container_s_configuration_holds_a_secret(host: Any) -> None:
    """Env, command, labels: `docker inspect` is readable by anyone in the docker group and ends up in support
    bundles. (An app colour gets its own credentials in its environment: DATABASE_URL, REDIS_URL.)"""
    for doc in inspect_all(host):
        if container_audit.name_of(doc) in INFRA:
            text = json.dumps(doc)
            leaked = [s for s in SECRETS if s in text]
            assert leaked == [], f"{container_audit.name_of(doc)} holds {len(leaked)} secret(s) in its configuration"


def users_of_containers(host: Any) -> dict[tuple[int, int], set[str]]:
    """uid:gid -> the host paths bind-mounted into the containers that run as it (the host's / excluded)."""
    out: dict[tuple[int, int], set[str]] = {}
    for doc in inspect_all(host):
        user = doc["Config"].get("User") or "0:0"
        uid, _, gid = user.partition(":")
        if not uid.isdigit() or not (gid or uid).isdigit() or int(uid) == 0:
            continue  # root in the container (none of Slipway's) or a name: not checked here
        key = (int(uid), int(gid or uid))
        mounts = {m["Source"] for m in doc.get("Mounts", []) if m.get("Type") == "bind" and m["Source"] != "/"}
        out.setdefault(key, set()).update(mounts)
    return out


def test_no_secret_is_readable_by_a_uid_that_does_not_need_it(host: Any) -> None:
    """Each non-root uid:gid a container runs as (and nobody, and systemd-journal's group) reads the plaintext
    secrets of the containers it runs only: no group bit, no world bit, no shared uid with a container that mounts
    the host's /. Checked as the kernel checks it: grep on the host under setpriv with that uid and gid only."""
    listing = "".join(f"{secret}\n" for secret in SECRETS)
    host.run_expect(
        [0], f"mkdir -p -m 0755 /tmp/slipway-secrets && printf %s {shlex.quote(listing)} > /tmp/slipway-secrets/list"
    )
    host.run_expect([0], "chmod 0644 /tmp/slipway-secrets/list")
    users = users_of_containers(host)
    users.setdefault((65534, 65534), set())
    users.setdefault((65533, 999), set())  # an account in the host's group 999 (systemd-journal on Debian)
    problems = []
    for (uid, gid), mounts in sorted(users.items()):
        found = host.run(
            f"timeout 120 setpriv --reuid={uid} --regid={gid} --clear-groups "
            f"grep -rlsF -f /tmp/slipway-secrets/list {SEARCHED}"
        ).stdout.split()
        stray = [path for path in found if not any(path == m or path.startswith(m.rstrip("/") + "/") for m in mounts)]
        if stray:
            problems.append(f"uid {uid} gid {gid} reads {stray} (its containers mount {sorted(mounts)})")
    assert problems == [], "\n".join(problems)


# Every directory Slipway writes under, and every host path bind-mounted into a container, is checked up to /.
SLIPWAY_ROOTS = ("/etc/slipway", "/var/lib/slipway", "/var/backups/slipway", "/usr/local/lib/slipway", "/run/slipway")


def test_every_parent_of_a_slipway_path_is_root_s_alone(host: Any) -> None:
    """Whoever owns a directory may rename what is in it, root's files included: a parent owned by a container's
    uid (say /etc/slipway created by the redis role as 999 when it ran first) would let that uid swap another
    service's configuration or secrets. Every directory from / down to each Slipway path and each bind-mount source
    (the mounted directory itself excluded: it belongs to its container) is root's and writable by root only."""
    paths = set(SLIPWAY_ROOTS)
    for doc in inspect_all(host):
        paths.update(m["Source"] for m in doc.get("Mounts", []) if m.get("Type") == "bind")
    bad = set()
    for path in sorted(paths):
        parts = Path(path).parts
        for depth in range(1, len(parts)):
            parent = str(Path(*parts[:depth]))
            if not host.file(parent).exists:
                continue
            out = host.check_output(f"stat -c '%u %g %a' {shlex.quote(parent)}").split()
            uid, mode = int(out[0]), int(out[2], 8)
            if uid != 0 or mode & 0o022:
                bad.add(f"{parent}: uid {uid} gid {out[1]} mode {out[2]}")
        if path in SLIPWAY_ROOTS and host.file(path).exists:
            out = host.check_output(f"stat -c '%u %g %a' {shlex.quote(path)}").split()
            if int(out[0]) != 0 or int(out[2], 8) & 0o022:
                bad.add(f"{path}: uid {out[0]} gid {out[1]} mode {out[2]}")
    assert sorted(bad) == [], "\n".join(sorted(bad))


# The roles that read the services registry (docs/runbook.md, "Add a service"): docker_engine and infra_network do not.
SERVICE_ROLES = "postgresql,redis,edge_proxy,prometheus"


def test_a_service_added_to_the_registry_is_provisioned_and_deployed(host: Any, run_playbook: RunPlaybook) -> None:
    """The runbook's "Add a service": registry entry + vault values, infra.yml limited to the roles that read the
    registry (its tags), deploy.yml --service: its database migrated, its Redis user, its route through the edge."""
    registry = {**VARS["slipway_services"]}
    registry["kite"] = {**registry["jotter"], "domain": "kite.localhost"}
    extra = {
        "slipway_services": registry,
        "vault_kite_db_owner_password": "fs-kite-owner-pw",  # pragma: allowlist secret
        "vault_kite_db_password": "fs-kite-runtime-pw",  # pragma: allowlist secret
        "vault_kite_redis_password": "fs-kite-redis-pw",  # pragma: allowlist secret
    }
    try:
        began = time.monotonic()
        infra = run_playbook(PLAYBOOKS / "infra.yml", "-e", "env=local", "--tags", SERVICE_ROLES, extra_vars=extra,
                             timeout=900)
        print(f"infra.yml --tags {SERVICE_ROLES} for a new service: {time.monotonic() - began:.1f}s")
        assert infra.returncode == 0, infra.stdout[-4000:]
        # Only those roles' tasks ran (Ansible tags each role's argument check `always`).
        others = re.findall(r"TASK \[(?:docker_engine|infra_network) : (?!Validating arguments)[^\]]*\]", infra.stdout)
        assert others == [], others
        deployed = run_playbook(
            PLAYBOOKS / "deploy.yml", "-e", "env=local", "-e", "service=kite", extra_vars=extra, timeout=600
        )
        assert deployed.returncode == 0, deployed.stdout[-4000:]
        ip = EDGE_ADDRESS
        probe = (
            "import http.client,sys;c=http.client.HTTPConnection(sys.argv[1],80,timeout=5);"
            "c.request('GET','/version',headers={'Host':'kite.localhost'});r=c.getresponse();"
            "print(r.status, r.read().decode())"
        )
        answer = host.check_output(f'python3 -c "{probe}" {ip}')
        assert answer.startswith("200 ") and json.loads(answer[4:])["version"] == "v1.0.0", answer
        tables = host.check_output("docker exec -u postgres postgres psql -X -qtAd kite -c '\\dt'")
        assert "notes" in tables, tables  # its own database, migrated before traffic moved
        # Its own Redis ACL user, limited to its own keys (the redis role made it from the registry).
        redis = f"docker exec -e REDISCLI_AUTH={extra['vault_kite_redis_password']} redis redis-cli --no-auth-warning "
        redis += "--user kite"
        assert host.check_output(f"{redis} SET kite:probe 1") == "OK"
        denied = host.run(f"{redis} SET jotter:probe 1")
        assert (denied.stdout + denied.stderr).strip().startswith("NOPERM"), denied.stdout + denied.stderr
    finally:
        host.run("docker rm -f kite-blue kite-green")
