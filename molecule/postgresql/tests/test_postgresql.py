"""PostgreSQL role: behaviour seen by real clients (psql in a client container on the shared network), in both modes.

Every test runs for the hosts of the modes it names with @pytest.mark.modes (conftest.py; unmarked: one-host only):
`one-host` is slipway-postgresql (the server in a container there), `managed` is slipway-postgresql-managed
(postgresql_managed: the role made the databases on prepare.yml's managed-postgres as an admin with LOGIN CREATEDB
CREATEROLE and no superuser). All tests of one host run before the other's, in file order: later ones change the host
(image tag change, password rotation).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import uuid
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from scenario_tools import (
    assert_refused_before_any_change,
    recap_changed,
    run_playbook,
    self_signed_bundle,
    service_entry,
)

SCENARIO = Path(__file__).resolve().parents[1]
ONE_HOST = "slipway-postgresql"
MANAGED_HOST = "slipway-postgresql-managed"
# The managed server prepare.yml starts on MANAGED_HOST (a plain container; the tests, not the role, are its superuser).
MANAGED_SERVER = "managed-postgres"
# Printed by molecule/conftest.py when a test fails.
DIAGNOSTIC_CONTAINERS = ("postgres", MANAGED_SERVER)
HOST_VARS: dict[str, Any] = yaml.safe_load((SCENARIO / "molecule.yml").read_text())["provisioner"]["inventory"][
    "host_vars"
]
VARS: dict[str, Any] = HOST_VARS[ONE_HOST]
MANAGED_VARS: dict[str, Any] = HOST_VARS[MANAGED_HOST]
MANAGED = MANAGED_VARS["postgresql_managed"]
SECRETS = {k: v for k, v in VARS.items() if k.startswith("vault_")}
MANAGED_SECRETS = {k: v for k, v in MANAGED_VARS.items() if k.startswith(("vault_", "managed_test_"))}
ADMIN = (MANAGED["admin_user"], MANAGED_VARS["vault_postgresql_managed_admin_password"])
IMAGE = VARS["postgresql_image"]
NETWORK = "infra-shared-network"
CLIENT = "pgtest-client"
LARK_OWNER = ("lark_service_owner", SECRETS["vault_lark_service_db_owner_password"])
LARK = ("lark_service", SECRETS["vault_lark_service_db_password"])
HERON_OWNER = ("heron_owner", SECRETS["vault_heron_db_owner_password"])
HERON = ("heron", SECRETS["vault_heron_db_password"])
SUPER = ("postgres", SECRETS["vault_postgresql_superuser_password"])
MONITOR = ("slipway_monitor", SECRETS["vault_postgresql_monitoring_password"])
# The uid/gid the server runs as (the official image's postgres user) and the files only it or root may read.
PG_UID = 999
CA_CERT = "/etc/slipway/postgresql/ca.crt"
SERVER_CERT = "/etc/slipway/postgresql/server.crt"
CONTAINER_SECRETS = ("/etc/slipway/postgresql-secrets/superuser_password", "/etc/slipway/postgresql-secrets/server.key")
ROOT_SECRETS = ("/etc/slipway/postgresql-ca/ca.key",)
# The data tier across hosts (molecule.yml): ONE_HOST is environment pgtest's data host, MANAGED_HOST its app host on
# another VM, both on the private network PRIVATE_NETWORK (the scenario's stand-in for a VPC).
PRIVATE_NETWORK = "slipway-pg-private"
DATA_ADDRESS = VARS["slipway_private_address"]
APP_ADDRESS = MANAGED_VARS["slipway_private_address"]
# An address on the private network that is no app host: the probe container the test starts there.
OTHER_ADDRESS = "10.241.7.50"
# Where the role copies its CA on each app host on another VM (postgresql_tls_clients_ca_file).
APP_HOST_CA = "/etc/slipway/data-tier/postgresql-ca.crt"
# The role's tag for the certificate alone (README): the certificate tests need nothing else of a converge.
TLS_ONLY = "postgresql_tls"


def is_managed(host: Any) -> bool:
    return cast(bool, host.backend.get_pytest_id().endswith("://" + MANAGED_HOST))


def endpoint(host: Any) -> str:
    """Where the services connect: the container's name, or the managed server's address (postgresql_managed.host)."""
    return cast(str, MANAGED["host"]) if is_managed(host) else "postgres"


def psql(
    host: Any, login: tuple[str, str | None], db: str, sql: str, *, tls: str = "", server: str | None = None
) -> Any:
    """Run SQL as `login` from the client container, over TCP to `server` (default: the mode's endpoint) like a
    service would.

    `tls` adds libpq TLS settings (e.g. "sslmode=disable"); without it libpq's default, sslmode=prefer, applies.
    """
    server = server or endpoint(host)
    user, password = login
    env = f"-e PGPASSWORD={shlex.quote(password)}" if password is not None else ""
    conn = f"host={server} dbname={db} user={user} connect_timeout=5 {tls}".strip()
    return host.run(
        f"docker exec {env} {CLIENT} psql -X -q -w -At -v ON_ERROR_STOP=1 {shlex.quote(conn)} -c {shlex.quote(sql)}"
    )


def su_sql(host: Any, sql: str, db: str = "postgres") -> str:
    """SQL as the superuser through the server container's socket (peer auth), as the backup scripts do. Managed:
    the test's own superuser of managed-postgres (the role never had one), to read the catalogue."""
    container = MANAGED_SERVER if is_managed(host) else "postgres"
    return cast(str, host.check_output(
        f"docker exec -u postgres {container} psql -X -At -v ON_ERROR_STOP=1 -d {db} -c {shlex.quote(sql)}"
    ))


def host_sql(host: Any, login: tuple[str, str], db: str, sql: str) -> Any:
    """Run SQL as `login` from the Docker host itself (psycopg2, as the role's own tasks connect): to the server's
    address on the shared network, so the server sees the network's gateway as the client."""
    address = server_address(host)
    script = (
        "import os, sys, psycopg2\n"
        "c = psycopg2.connect(host=sys.argv[1], dbname=sys.argv[2], user=sys.argv[3], connect_timeout=5)\n"
        "cur = c.cursor(); cur.execute(sys.argv[4]); print('|'.join(map(str, cur.fetchone())))\n"
    )
    return host.run(
        f"PGPASSWORD={shlex.quote(login[1])} python3 -c {shlex.quote(script)} "
        f"{address} {shlex.quote(db)} {shlex.quote(login[0])} {shlex.quote(sql)}"
    )


def server_address(host: Any) -> str:
    """The server container's address on the shared network."""
    return cast(str, host.check_output(
        f"docker inspect -f '{{{{(index .NetworkSettings.Networks \"{NETWORK}\").IPAddress}}}}' postgres"
    ))


def network_gateway(host: Any) -> str:
    """The shared network's gateway: the Docker host's own address on that network."""
    return cast(str, host.check_output(f"docker network inspect -f '{{{{(index .IPAM.Config 0).Gateway}}}}' {NETWORK}"))


def served_serial(host: Any) -> str:
    """The serial number of the certificate the server presents (read from the host with openssl)."""
    return cast(str, host.check_output(
        f"openssl s_client -starttls postgres -connect {server_address(host)}:5432 </dev/null 2>/dev/null"
        " | openssl x509 -noout -serial"
    ))


def file_serial(host: Any, path: str) -> str:
    return cast(str, host.check_output(f"openssl x509 -noout -serial -in {path}"))


def denied_message(host: Any, db: str) -> str:
    """What the server answers a login to a database it may not reach: pg_hba.conf's refusal on the role's own
    server, the missing CONNECT privilege on a managed one (whose pg_hba.conf is the provider's)."""
    return f'permission denied for database "{db}"' if is_managed(host) else "no pg_hba.conf entry"


def verify_full(host: Any) -> Any:
    """A service's login from the client container, verifying the server against the CA published on the host."""
    host.check_output(f"docker cp {CA_CERT} {CLIENT}:/tmp/slipway-postgresql-ca.crt")
    return psql(host, LARK, "lark_service", "SELECT 1",
                tls="sslmode=verify-full sslrootcert=/tmp/slipway-postgresql-ca.crt")


def playbook(
    *args: str, extra_vars: dict[str, Any] | None = None, limit: str = ONE_HOST, tags: str = "postgresql"
) -> subprocess.CompletedProcess[str]:
    """Run this scenario's converge playbook against the Molecule inventory, on `limit` only (a host pattern) and,
    unless `tags` is empty, only the tasks with those tags (by default the postgresql role's: the network it needs
    is there since converge)."""
    selected = ["--tags", tags] if tags else []
    return run_playbook(SCENARIO / "converge.yml", "--limit", limit, *selected, *args, extra_vars=extra_vars)


def state(host: Any) -> tuple[str, str]:
    """What a failed run must not touch: the container's ID and the rendered pg_hba.conf."""
    return (
        host.check_output("docker inspect -f '{{.Id}}' postgres"),
        host.check_output("sha256sum /etc/slipway/postgresql/pg_hba.conf"),
    )


@pytest.fixture(scope="module", autouse=True)
def client(host: Any) -> Any:
    host.run(f"docker rm -f {CLIENT}")
    host.check_output(f"docker run -d --name {CLIENT} --network {NETWORK} --entrypoint sleep {IMAGE} infinity")
    if is_managed(host):  # the managed server's network stands for the route to the provider's endpoint
        host.check_output(f"docker network connect managed-db {CLIENT}")
    yield CLIENT
    host.run(f"docker rm -f {CLIENT}")


def test_server_runs_on_the_shared_network_only(host: Any) -> None:
    info = json.loads(host.check_output("docker inspect postgres"))[0]
    assert info["State"]["Running"]
    assert list(info["NetworkSettings"]["Networks"]) == [NETWORK]
    # Published nowhere but on the private address (the next tests: an app host is another VM here).
    bindings = info["HostConfig"]["PortBindings"] or {}
    assert [b["HostIp"] for b in bindings.get("5432/tcp", [])] == [DATA_ADDRESS] and list(bindings) == ["5432/tcp"]
    assert any(m["Type"] == "volume" and m["Destination"] == "/var/lib/postgresql/data" for m in info["Mounts"])
    assert "POSTGRES_PASSWORD=" not in " ".join(info["Config"]["Env"]), "the password must not be in the env"


def test_only_scram_authentication(host: Any) -> None:
    assert su_sql(host, "SHOW password_encryption") == "scram-sha-256"
    methods = set(su_sql(host, "SELECT DISTINCT auth_method FROM pg_hba_file_rules").split())
    assert methods == {"scram-sha-256", "peer"}, methods
    # Every stored password is a SCRAM verifier.
    assert su_sql(host, "SELECT count(*) FROM pg_authid WHERE rolpassword NOT LIKE 'SCRAM-SHA-256$%'") == "0"
    # Memory settings derive from postgresql_memory_mb (256 MiB -> 64 MB shared buffers).
    assert su_sql(host, "SHOW shared_buffers") == "64MB"


def test_superuser_is_refused_from_a_container_and_allowed_from_the_host(host: Any) -> None:
    # The right password from a container on the shared network: no pg_hba.conf line admits it, TLS or not.
    for tls in ("", "sslmode=require"):
        refused = psql(host, SUPER, "postgres", "SELECT 1", tls=tls)
        assert refused.rc != 0, f"superuser login from a container accepted with {tls}"
        assert "no pg_hba.conf entry" in refused.stderr, refused.stderr
    # From the Docker host itself (what the role's own tasks do): the server sees the network's gateway.
    seen = host_sql(host, SUPER, "postgres", "SELECT host(inet_client_addr()), ssl FROM pg_stat_ssl"
                    " WHERE pid = pg_backend_pid()")
    assert seen.rc == 0, seen.stderr
    assert seen.stdout.strip() == f"{network_gateway(host)}|True", seen.stdout
    rules = su_sql(host, "SELECT type || ' ' || array_to_string(user_name, ',') || ' ' || coalesce(address, '') || ' '"
                   " || coalesce(netmask, '') FROM pg_hba_file_rules ORDER BY line_number")
    superuser_tcp = [rule for rule in rules.splitlines() if rule.split()[:2] != ["local", "postgres"]
                     and rule.split()[1] == "postgres"]
    assert superuser_tcp == [f"hostssl postgres {network_gateway(host)} 255.255.255.255"], rules


def test_every_tcp_line_requires_tls_and_plain_text_is_refused(host: Any) -> None:
    types = set(su_sql(host, "SELECT DISTINCT type FROM pg_hba_file_rules").split())
    assert types == {"local", "hostssl"}, types
    for login in (LARK, LARK_OWNER, MONITOR):
        db = "postgres" if login is MONITOR else "lark_service"
        plain = psql(host, login, db, "SELECT 1", tls="sslmode=disable")
        assert plain.rc != 0, f"{login[0]}: a plain-text login was accepted"
        assert "no pg_hba.conf entry" in plain.stderr and "no encryption" in plain.stderr, plain.stderr
    # libpq's default (sslmode=prefer: what DATABASE_URL without sslmode gets) and require both end up on TLS.
    for tls in ("", "sslmode=require"):
        on_tls = psql(host, LARK, "lark_service", "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", tls=tls)
        assert on_tls.rc == 0 and on_tls.stdout.strip() == "t", (tls, on_tls.stderr)


@pytest.mark.modes("one-host", "managed")
def test_clients_verify_the_server_with_the_published_ca(host: Any) -> None:
    # Managed: the provider's CA (postgresql_managed.ca_certificate), published at the same place.
    assert host.check_output(f"stat -c '%U %a' {CA_CERT}") == "root 644", "the CA certificate is published for services"
    ok = verify_full(host)
    assert ok.rc == 0 and ok.stdout.strip() == "1", ok.stderr
    verify = "sslmode=verify-full sslrootcert=/tmp/slipway-postgresql-ca.crt"
    # The name is checked: the right server at its right address, under a name its certificate does not hold, is
    # refused.
    address = MANAGED["host"] if is_managed(host) else server_address(host)
    wrong_name = psql(host, LARK, "lark_service", "SELECT 1", tls=f"{verify} hostaddr={address}",
                      server="not-in-the-certificate.test")
    assert wrong_name.rc != 0 and "does not match" in wrong_name.stderr, wrong_name.stderr
    if not is_managed(host):  # the role's own certificate names `postgres`, not the container's address
        by_address = psql(host, LARK, "lark_service", "SELECT 1", tls=verify, server=address)
        assert by_address.rc != 0 and "does not match" in by_address.stderr, by_address.stderr


def remote_psql(
    where: list[str], login: tuple[str, str], db: str, sql: str, tls: str
) -> subprocess.CompletedProcess[str]:
    """psql as `login` to the data host's private address, from a one-off client container started by `where` (a
    docker command line: the app host's engine, or the machine's on the private network). The password travels in
    the environment only."""
    conn = f"host={DATA_ADDRESS} dbname={db} user={login[0]} connect_timeout=5 {tls}"
    argv = [*where, "--rm", "-e", "PGPASSWORD", "--entrypoint", "psql", IMAGE, "-X", "-q", "-w", "-At", "-v",
            "ON_ERROR_STOP=1", conn, "-c", sql]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "PGPASSWORD": login[1]})


def from_app_host(login: tuple[str, str], db: str, sql: str, tls: str) -> subprocess.CompletedProcess[str]:
    """A service's connection from the app host on another VM (MANAGED_HOST), with the CA the role copied there
    mounted as the app_release role mounts it."""
    folder = APP_HOST_CA.rsplit("/", 1)[0]
    where = ["docker", "exec", "-e", "PGPASSWORD", MANAGED_HOST, "docker", "run", "-v", f"{folder}:{folder}:ro"]
    return remote_psql(where, login, db, sql, tls)


def from_another_address(login: tuple[str, str], db: str, sql: str, tls: str) -> subprocess.CompletedProcess[str]:
    """A connection from an address on the private network that is no app host (a probe container there)."""
    return remote_psql(["docker", "run", "--network", PRIVATE_NETWORK, "--ip", OTHER_ADDRESS], login, db, sql, tls)


SEEN = "SELECT host(inet_client_addr()) || ' ' || ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
VERIFY_FULL = f"sslmode=verify-full sslrootcert={APP_HOST_CA}"


def test_app_hosts_on_other_vms_connect_to_the_private_address_with_verify_full(host: Any) -> None:
    # Published on the data host's private address only (never 0.0.0.0), because an app host is another VM.
    bindings = json.loads(host.check_output("docker inspect postgres"))[0]["HostConfig"]["PortBindings"]
    assert bindings == {"5432/tcp": [{"HostIp": DATA_ADDRESS, "HostPort": "5432"}]}, bindings
    # The service's runtime and owner (migrations) roles, verifying the server's certificate (it names the private
    # address) against the CA the role copied to the app host; the server sees the app host's own address.
    for login in (LARK, LARK_OWNER):
        seen = from_app_host(login, "lark_service", SEEN, VERIFY_FULL)
        assert seen.returncode == 0, seen.stderr
        assert seen.stdout.strip() == f"{APP_ADDRESS} true", seen.stdout
    copied = subprocess.run(["docker", "exec", MANAGED_HOST, "cat", APP_HOST_CA], capture_output=True, text=True,
                            check=True).stdout
    assert copied == host.file(CA_CERT).content_string
    # pg_hba.conf: from outside the host, the app host's address alone, for the services' roles alone.
    rules = su_sql(host, "SELECT array_to_string(user_name, ',') || ' ' || address FROM pg_hba_file_rules"
                   " WHERE netmask = '255.255.255.255' ORDER BY line_number").splitlines()
    remote = [rule for rule in rules if rule != f"postgres {network_gateway(host)}"]
    assert remote == [f"heron_owner,heron {APP_ADDRESS}", f"lark_service_owner,lark_service {APP_ADDRESS}"], rules


def test_plain_text_and_other_logins_from_an_app_host_are_refused(host: Any) -> None:
    plain = from_app_host(LARK, "lark_service", "SELECT 1", "sslmode=disable")
    assert plain.returncode != 0, "a plain-text login from the app host was accepted"
    assert f'no pg_hba.conf entry for host "{APP_ADDRESS}"' in plain.stderr and "no encryption" in plain.stderr, (
        plain.stderr)
    # Over TLS with the right passwords, the superuser and the monitoring login are refused from there too.
    for login, db in ((SUPER, "postgres"), (MONITOR, "postgres")):
        refused = from_app_host(login, db, "SELECT 1", VERIFY_FULL)
        assert refused.returncode != 0 and "no pg_hba.conf entry" in refused.stderr, (login[0], refused.stderr)


def test_an_address_that_is_no_app_host_is_refused(host: Any) -> None:
    # A host on the same private network with a service's right password, over TLS: no pg_hba.conf line admits it.
    refused = from_another_address(LARK, "lark_service", "SELECT 1", "sslmode=require")
    assert refused.returncode != 0, "a login from an address that is no app host was accepted"
    assert f'no pg_hba.conf entry for host "{OTHER_ADDRESS}"' in refused.stderr, refused.stderr


def test_the_server_runs_hardened(host: Any) -> None:
    info = json.loads(host.check_output("docker inspect postgres"))[0]
    config = info["HostConfig"]
    assert info["Config"]["User"] == f"{PG_UID}:{PG_UID}", "runs as the image's postgres user, no root start"
    assert config["CapDrop"] == ["ALL"] and not config["CapAdd"], (config["CapDrop"], config["CapAdd"])
    assert config["ReadonlyRootfs"] is True
    assert "no-new-privileges" in (config["SecurityOpt"] or []), config["SecurityOpt"]
    assert (config["PidsLimit"] or 0) > 0, config["PidsLimit"]
    assert (config["NanoCpus"] or 0) > 0, config["NanoCpus"]
    assert config["Memory"] == 256 * 1024 * 1024
    assert set(config["Tmpfs"] or {}) == {"/var/run/postgresql", "/tmp"}, config["Tmpfs"]  # noqa: S108
    # Inside: the server has no capability at all, and the root filesystem refuses writes.
    status = host.check_output("docker exec postgres cat /proc/1/status")
    assert re.search(rf"^Uid:\s+{PG_UID}\s", status, re.M) and re.search(r"^CapEff:\s+0+$", status, re.M), status
    write = host.run("docker exec postgres touch /usr/slipway-write-test")
    assert write.rc != 0 and "Read-only file system" in write.stderr, write.stderr


@pytest.mark.parametrize("path", CONTAINER_SECRETS + ROOT_SECRETS)
def test_secret_files_are_readable_only_by_root_or_the_container_user(host: Any, path: str) -> None:
    # One call: the file's owner, group and mode, then a read by another local user (not root, not the container's
    # uid), which must be denied.
    result = host.run(f"stat -c '%u %g %a' {path} && setpriv --reuid=4321 --regid=4321 --clear-groups cat {path}")
    assert result.stdout.strip(), (path, result.stderr)
    uid, gid, mode = result.stdout.split()[:3]
    owner = PG_UID if path in CONTAINER_SECRETS else 0
    assert (int(uid), int(gid)) == (owner, 0), (path, uid, gid)
    assert mode in ("600", "400"), mode
    assert result.rc != 0 and "Permission denied" in result.stderr, result.stderr


@pytest.mark.modes("one-host", "managed")
def test_each_database_belongs_to_its_owner_and_public_has_no_access(host: Any) -> None:
    rows = su_sql(host, "SELECT datname, pg_get_userbyid(datdba), datacl IS NOT NULL AND NOT EXISTS"
                  " (SELECT 1 FROM aclexplode(datacl) WHERE grantee = 0) FROM pg_database"
                  " WHERE datname IN ('lark_service', 'heron') ORDER BY 1")
    assert rows.split() == ["heron|heron_owner|t", "lark_service|lark_service_owner|t"], rows
    # The runtime roles and the monitoring role have the attributes of an ordinary login, nothing more.
    flags = su_sql(host, "SELECT string_agg(rolname || ':' || (rolsuper OR rolcreatedb OR rolcreaterole"
                   " OR rolreplication OR rolbypassrls)::text, ',' ORDER BY rolname) FROM pg_roles WHERE rolname IN"
                   " ('lark_service', 'lark_service_owner', 'heron', 'heron_owner', 'slipway_monitor')")
    assert flags == ("heron:false,heron_owner:false,lark_service:false,lark_service_owner:false,"
                     "slipway_monitor:false"), flags


@pytest.mark.modes("one-host", "managed")
def test_runtime_role_uses_tables_the_owner_creates(host: Any) -> None:
    ddl = psql(
        host,
        LARK_OWNER,
        "lark_service",
        "DROP TABLE IF EXISTS notes;"
        "CREATE TABLE notes (id bigserial PRIMARY KEY, body text NOT NULL);"
        "INSERT INTO notes (body) VALUES ('by owner')",
    )
    assert ddl.rc == 0, ddl.stderr
    dml = psql(
        host,
        LARK,
        "lark_service",
        "INSERT INTO notes (body) VALUES ('by runtime'), ('to delete');"
        "UPDATE notes SET body = 'updated' WHERE body = 'by owner';"
        "DELETE FROM notes WHERE body = 'to delete';"
        "SELECT string_agg(body, ',' ORDER BY id) FROM notes",
    )
    assert dml.rc == 0, dml.stderr
    assert dml.stdout.strip() == "updated,by runtime"


@pytest.mark.modes("one-host", "managed")
def test_runtime_role_cannot_change_the_schema(host: Any) -> None:
    create = psql(host, LARK, "lark_service", "CREATE TABLE sneaky (id int)")
    assert create.rc != 0
    assert "permission denied for schema public" in create.stderr
    drop = psql(host, LARK, "lark_service", "DROP TABLE notes")
    assert drop.rc != 0
    assert "must be owner" in drop.stderr


@pytest.mark.modes("one-host", "managed")
@pytest.mark.parametrize("login", [LARK, LARK_OWNER], ids=["runtime", "owner"])
def test_no_role_reaches_another_services_database(host: Any, login: tuple[str, str]) -> None:
    result = psql(host, login, "heron", "SELECT 1")
    assert result.rc != 0
    # Here pg_hba.conf refuses first; a managed server admits every address, and the revoked CONNECT refuses.
    assert denied_message(host, "heron") in result.stderr, result.stderr
    # Behind pg_hba.conf, the catalogue agrees: PUBLIC lost CONNECT, only the service's roles have it.
    assert su_sql(host, f"SELECT has_database_privilege('{login[0]}', 'heron', 'CONNECT')") == "f"
    assert su_sql(host, "SELECT has_database_privilege('heron', 'heron', 'CONNECT')") == "t"


@pytest.mark.modes("one-host", "managed")
def test_the_monitoring_login_reads_statistics_and_no_service_data(host: Any) -> None:
    # What the exporter needs: the statistics views and settings, through pg_monitor.
    stats = psql(host, MONITOR, "postgres", "SELECT count(*) > 0 FROM pg_stat_database")
    assert stats.rc == 0 and stats.stdout.strip() == "t", stats.stderr
    assert su_sql(host, "SELECT pg_has_role('slipway_monitor', 'pg_monitor', 'MEMBER')") == "t"
    flags = "SELECT rolsuper::text || ',' || rolcreaterole::text || ',' || rolconnlimit FROM pg_roles"
    assert su_sql(host, f"{flags} WHERE rolname = 'slipway_monitor'") == "false,false,3"
    # No service's data: pg_hba.conf admits it to the postgres database only (managed: no CONNECT on the service
    # databases), and it holds no table privilege.
    for db in ("lark_service", "heron"):
        denied = psql(host, MONITOR, db, "SELECT 1")
        assert denied.rc != 0 and denied_message(host, db) in denied.stderr, denied.stderr
    assert su_sql(host, "SELECT has_table_privilege('slipway_monitor', 'notes', 'SELECT')", db="lark_service") == "f"


@pytest.mark.modes("one-host", "managed")
def test_unauthenticated_and_wrong_password_logins_fail(host: Any) -> None:
    no_password = psql(host, (LARK[0], None), "lark_service", "SELECT 1")
    assert no_password.rc != 0
    assert "no password supplied" in no_password.stderr
    wrong = psql(host, (LARK[0], "not-the-password"), "lark_service", "SELECT 1")
    assert wrong.rc != 0
    assert "password authentication failed" in wrong.stderr
    wrong_super = psql(host, ("postgres", "not-the-password"), "postgres", "SELECT 1")
    assert wrong_super.rc != 0


def test_timer_backup_then_restore_into_a_scratch_database(host: Any) -> None:
    assert host.service("slipway-pg-backup.timer").is_enabled
    host.check_output("systemctl start slipway-pg-backup.service")
    dumps = {}
    for db in ("heron", "lark_service"):
        files = host.check_output(f"ls -1t /var/backups/slipway/postgresql/{db}/").split()
        assert files and files[0].endswith(".dump"), files
        dumps[db] = f"/var/backups/slipway/postgresql/{db}/{files[0]}"
    listing = host.check_output(f"docker exec -i -u postgres postgres pg_restore --list < {dumps['lark_service']}")
    assert "TABLE public notes lark_service_owner" in listing
    scratch = "scratch_" + uuid.uuid4().hex[:8]
    restored = host.run(f"slipway-pg-restore {dumps['lark_service']} {scratch}")
    assert restored.rc == 0, restored.stderr
    try:
        assert su_sql(host, "SELECT string_agg(body, ',' ORDER BY id) FROM notes", db=scratch) == "updated,by runtime"
        databases = su_sql(host, "SELECT datname, pg_get_userbyid(datdba) FROM pg_database")
        owners = dict(line.split("|") for line in databases.split())
        assert owners[scratch] == "lark_service_owner"
        # Never overwrites: restoring into an existing database is refused.
        again = host.run(f"slipway-pg-restore {dumps['lark_service']} {scratch}")
        assert again.rc == 1 and "exists" in again.stderr
    finally:
        su_sql(host, f"DROP DATABASE IF EXISTS {scratch}")


def test_backup_entry_point_for_one_database_applies_retention(host: Any) -> None:
    folder = "/var/backups/slipway/postgresql/lark_service"
    newest = host.check_output(f"ls -1t {folder}").split()[0]
    fakes = [f"lark_service-2020010{i}T000000Z.dump" for i in (1, 2, 3)]
    for name in fakes:
        host.check_output(f"cp {folder}/{newest} {folder}/{name}")
    # Age every dump: only the newest postgresql_backup_keep_min (2) may survive the next run.
    host.check_output(f"touch -d '30 days ago' {folder}/*.dump && touch -d '29 days ago' {folder}/{newest}")
    result = host.run("slipway-pg-backup lark_service")
    assert result.rc == 0, result.stderr
    written = result.stdout.strip()
    assert re.fullmatch(rf"{folder}/lark_service-\d{{8}}T\d{{6}}Z(-\d+)?\.dump", written), written
    left = set(host.check_output(f"ls -1 {folder}").split())
    assert left == {newest, written.rsplit("/", 1)[1]}, left
    # A recent dump is never pruned, whatever the count.
    host.check_output(f"touch {folder}/{newest}")
    second = host.check_output("slipway-pg-backup lark_service")
    assert set(host.check_output(f"ls -1 {folder}").split()) == left | {second.rsplit("/", 1)[1]}
    assert host.run("slipway-pg-backup 'bad;name'").rc == 2


def test_backups_are_readable_only_by_root(host: Any) -> None:
    listing = host.check_output("find /var/backups/slipway/postgresql -mindepth 1 -printf '%u:%g %m %p\\n'")
    loose = [line for line in listing.splitlines() if not line.startswith("root:root ") or line.split()[1][-2:] != "00"]
    assert not loose, loose


def test_check_diff_on_converged_hosts_changes_nothing_and_prints_no_secret() -> None:
    # Both modes in one run (this test runs once, for the one-host host, before anything changes either host).
    run = playbook("--check", "--diff", limit="all", tags="")
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert recap_changed(output, ONE_HOST) == 0, output[-3000:]
    assert recap_changed(output, MANAGED_HOST) == 0, output[-3000:]
    leaked = [name for name, value in {**SECRETS, **MANAGED_SECRETS}.items() if value in output]
    assert not leaked, f"secrets printed: {leaked}"


def test_the_certificate_is_renewed_within_its_margin(host: Any) -> None:
    before = file_serial(host, SERVER_CERT)
    assert served_serial(host) == before
    ca_before = file_serial(host, CA_CERT)
    # The certificate has about 365 days left: with a 380-day margin it is due, and is reissued for 400 days.
    # The certificate's own tag (what a scheduled renewal would run): its checks, the renewal and the reload only.
    run = playbook(extra_vars={"postgresql_tls_cert_days": 400, "postgresql_tls_renew_days": 380}, tags=TLS_ONLY)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    after = file_serial(host, SERVER_CERT)
    assert after != before, "the certificate within its renewal margin was not renewed"
    assert file_serial(host, CA_CERT) == ca_before, "renewing the server certificate must keep the CA"
    # The server reloaded (no restart needed) and presents the new one; clients still verify it.
    assert served_serial(host) == after
    assert verify_full(host).rc == 0


def test_a_given_certificate_replaces_the_generated_one(host: Any) -> None:
    # App hosts on another VM verify the server by its private address: a certificate without it is refused.
    without_address = self_signed_bundle(["postgres"])
    refused = playbook(extra_vars={"postgresql_tls_ca_certificate": without_address[1],
                                   "postgresql_tls_certificate": without_address[1],
                                   "vault_postgresql_tls_private_key": without_address[0][len(without_address[1]):]},
                       tags=TLS_ONLY)
    assert_refused_before_any_change(refused, ONE_HOST, f"does not name {DATA_ADDRESS}")
    bundle, cert = self_signed_bundle(["postgres", DATA_ADDRESS])
    key = bundle[len(cert):]
    given = {
        "postgresql_tls_ca_certificate": cert,
        "postgresql_tls_certificate": cert,
        "vault_postgresql_tls_private_key": key,
    }
    # A key that is not the certificate's is refused.
    other_key = self_signed_bundle(["postgres"])[0].split("-----END CERTIFICATE-----\n", 1)[1]
    wrong = playbook(extra_vars={**given, "vault_postgresql_tls_private_key": other_key}, tags=TLS_ONLY)
    assert wrong.returncode != 0, wrong.stdout[-3000:]
    assert "is not the key of postgresql_tls_certificate" in wrong.stdout, wrong.stdout[-3000:]
    run = playbook(extra_vars=given, tags=TLS_ONLY)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert "PRIVATE KEY" not in output, "the given key was printed"
    assert host.file(CA_CERT).content_string.strip() == cert.strip()
    assert served_serial(host) == file_serial(host, SERVER_CERT) == file_serial(host, CA_CERT)
    assert verify_full(host).rc == 0
    key_file = host.file(CONTAINER_SECRETS[1])
    assert (key_file.uid, key_file.gid, key_file.mode) == (PG_UID, 0, 0o600)
    # Back to the role's own CA, on a host that has none yet: --check previews it without failing on the files a
    # real run would create first. The real run that reissues both and publishes the role's CA again is the next
    # test's (one converge for both).
    host.check_output("rm -rf /etc/slipway/postgresql-ca")
    preview = playbook("--check", "--diff", tags=TLS_ONLY)
    assert preview.returncode == 0, (preview.stdout + preview.stderr)[-3000:]
    assert recap_changed(preview.stdout, "slipway-postgresql") > 0


def test_image_tag_change_keeps_data_rotates_passwords_and_restores_the_roles_ca(host: Any) -> None:
    assert psql(host, LARK, "lark_service", "INSERT INTO notes (body) VALUES ('before recreate')").rc == 0
    old_id = host.check_output("docker inspect -f '{{.Id}}' postgres")
    host.check_output(f"docker tag {IMAGE} {IMAGE}-next")
    rotated = "test-heron-rotated-pw-4a1f"
    rotated_super = "test-superuser-rotated-pw-d2c8"
    run = playbook(
        extra_vars={
            "postgresql_image": f"{IMAGE}-next",
            "vault_heron_db_password": rotated,
            "vault_postgresql_superuser_password": rotated_super,
        }
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert rotated not in output and rotated_super not in output
    info = json.loads(host.check_output("docker inspect postgres"))[0]
    assert info["Id"] != old_id, "the container should have been recreated"
    assert info["Config"]["Image"] == f"{IMAGE}-next"
    rows = psql(host, LARK, "lark_service", "SELECT string_agg(body, ',' ORDER BY id) FROM notes")
    assert rows.stdout.strip() == "updated,by runtime,before recreate", rows.stderr
    assert psql(host, (HERON[0], rotated), "heron", "SELECT 1").rc == 0
    assert host_sql(host, ("postgres", rotated_super), "postgres", "SELECT 1").rc == 0
    assert host_sql(host, SUPER, "postgres", "SELECT 1").rc != 0
    old_login = psql(host, HERON, "heron", "SELECT 1")
    assert old_login.rc != 0 and "password authentication failed" in old_login.stderr
    # After the previous test's given certificate (and its CA directory removed): the role's own CA is back, and
    # the server presents a certificate from it that clients verify.
    assert "Slipway PostgreSQL CA" in host.check_output(f"openssl x509 -noout -subject -in {CA_CERT}")
    assert host.check_output("stat -c '%U %a' /etc/slipway/postgresql-ca/ca.key") == "root 600"
    assert served_serial(host) == file_serial(host, SERVER_CERT)
    assert verify_full(host).rc == 0


def test_invalid_service_name_fails_before_any_change(host: Any) -> None:
    before = state(host)
    run = playbook(
        extra_vars={
            "slipway_services": {
                **VARS["slipway_services"],
                "Bad_Name": service_entry("r.example.com/x", "bad.test", "postgres"),
            }
        }
    )
    assert_refused_before_any_change(run, "slipway-postgresql", "service 'Bad_Name' is not a service name")
    assert state(host) == before


def test_missing_password_variable_fails_before_any_change(host: Any) -> None:
    before = state(host)
    run = playbook(
        extra_vars={
            "slipway_services": {
                **VARS["slipway_services"],
                "osprey": service_entry("r.example.com/osprey", "osprey.test", "postgres"),
            },
            "vault_osprey_db_owner_password": "test-osprey-owner-pw",  # pragma: allowlist secret
        }
    )
    assert_refused_before_any_change(
        run, "slipway-postgresql", "service osprey", "vault_osprey_db_password is not defined"
    )
    assert state(host) == before
    assert su_sql(host, "SELECT count(*) FROM pg_database WHERE datname = 'osprey'") == "0"


@pytest.mark.modes("managed")
def test_managed_mode_runs_no_server_here_and_its_admin_is_no_superuser(host: Any) -> None:
    # The login the role made everything with has what RDS's privileged account has, and no more.
    roles = su_sql(host, "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls"
                   " FROM pg_roles")
    attributes = {line.split("|", 1)[0]: line.split("|", 1)[1] for line in roles.split()}
    assert attributes[ADMIN[0]] == "f|t|t|f|f", attributes[ADMIN[0]]
    # It acts as each service's owner through a membership it granted itself (PostgreSQL 15), nothing else.
    memberships = su_sql(host, "SELECT pg_get_userbyid(member) || '>' || pg_get_userbyid(roleid) FROM pg_auth_members")
    members = sorted(line.split(">")[1] for line in memberships.split() if line.split(">")[0] == ADMIN[0])
    assert members == ["heron_owner", "lark_service_owner"], memberships
    # The role started no container, wrote no server configuration or key, and installed no backup timer.
    names = host.check_output("docker ps -a --format '{{.Names}}'").split()
    assert "postgres" not in names and MANAGED_SERVER in names, names
    leftovers = host.run("ls -d /etc/slipway/postgresql/postgresql.conf /etc/slipway/postgresql-secrets"
                         " /etc/slipway/postgresql-ca /etc/systemd/system/slipway-pg-backup.timer"
                         " /var/backups/slipway/postgresql")
    assert leftovers.rc != 0 and not leftovers.stdout.strip(), leftovers.stdout
    # The rollout's pre-migration backup: no dump, a message for the release's result, and the rollout goes on.
    backup = host.run("slipway-pg-backup lark_service")
    assert backup.rc == 0, backup.stderr
    expected = f"skipped: lark_service on the managed PostgreSQL {MANAGED['host']} "
    assert backup.stdout.startswith(expected), backup.stdout
    assert host.run("slipway-pg-backup 'bad;name'").rc == 2
    restore = host.run("slipway-pg-restore /tmp/x.dump scratch")
    assert restore.rc == 2 and "restore through the provider" in restore.stderr, restore.stderr


@pytest.mark.modes("managed")
def test_managed_password_rotation_changes_only_that_role(host: Any) -> None:
    # The admin cannot read stored passwords (pg_authid): the role logs in as each role to tell a current password
    # from a changed one, so a converge changes exactly the rotated role, and nothing else.
    rotated = "test-heron-managed-rotated-pw-91b2"  # pragma: allowlist secret
    run = playbook(extra_vars={"vault_heron_db_password": rotated}, limit=MANAGED_HOST)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert recap_changed(output, MANAGED_HOST) == 1, output[-3000:]
    assert rotated not in output
    assert psql(host, (HERON[0], rotated), "heron", "SELECT 1").rc == 0
    old_login = psql(host, HERON, "heron", "SELECT 1")
    assert old_login.rc != 0 and "password authentication failed" in old_login.stderr, old_login.stderr


@pytest.mark.modes("managed")
def test_managed_bad_settings_fail_before_any_change(host: Any) -> None:
    # Settings that cannot work: refused by the preflight, every problem named with its fix, nothing changed.
    run = playbook(
        extra_vars={"postgresql_managed": {"admin_user": ADMIN[0]}, "vault_postgresql_managed_admin_password": ""},
        limit=MANAGED_HOST,
    )
    assert_refused_before_any_change(
        run, MANAGED_HOST,
        "postgresql_managed.host", "vault_postgresql_managed_admin_password", "postgresql_managed.ca_certificate",
    )
    # A CA that did not sign the server's certificate: verify-full refuses the server before anything is made on it.
    published = host.check_output(f"cat {CA_CERT}")
    services = {**VARS["slipway_services"], "osprey": service_entry("r.example.com/osprey", "osprey.test", "postgres")}
    try:
        run = playbook(
            extra_vars={
                "postgresql_managed": {**MANAGED, "ca_certificate": self_signed_bundle(["not-the-provider"])[1]},
                "slipway_services": services,
                "vault_osprey_db_owner_password": "test-osprey-owner-pw",  # pragma: allowlist secret
                "vault_osprey_db_password": "test-osprey-pw",  # pragma: allowlist secret
            },
            limit=MANAGED_HOST,
        )
        output = run.stdout + run.stderr
        assert run.returncode != 0, output[-3000:]
        assert "certificate verify failed" in " ".join(output.split()), output[-3000:]
        made = su_sql(host, "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'osprey%'")
        assert made == "0" and su_sql(host, "SELECT count(*) FROM pg_database WHERE datname = 'osprey'") == "0"
    finally:
        host.check_output(f"printf '%s\\n' {shlex.quote(published)} > {CA_CERT}")

