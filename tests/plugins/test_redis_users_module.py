"""slipway.core.redis_users (the redis role's managed mode) through ansible-playbook, against a real redis-server on
loopback (Debian's package, which `make test` installs) that stands in for a managed Redis: an ACL file, the default
user off, and an admin login that may only manage users (no keys, no data commands)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from plugin_loader import dump_task, loaded, play

ADMIN_PASSWORD = "redis-admin-seeded-9f1c"  # pragma: allowlist secret
SERVICE_PASSWORD = "notes-seeded-pw-41d7"  # pragma: allowlist secret
OTHER_PASSWORD = "jotter-seeded-pw-7a2e"  # pragma: allowlist secret
RULES = "~{p}* &{p}* +@all -@dangerous -scan"


@dataclass
class Server:
    port: int
    acl_file: Path

    def cli(self, user: str, password: str, *args: str) -> str:
        result = subprocess.run(
            ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), "--user", user, "--pass", password,
             "--no-auth-warning", *args],
            capture_output=True, text=True, timeout=10, check=False)
        return (result.stdout + result.stderr).strip()

    def admin(self, *args: str) -> str:
        return self.cli("slipway_admin", ADMIN_PASSWORD, *args)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def server() -> Iterator[Server]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is missing: apt-get install redis-server (make test installs it)")
    tmp = Path(tempfile.mkdtemp(prefix="slipway-redis-users-"))
    port = _free_port()
    acl = tmp / "users.acl"
    acl.write_text(
        "user default off resetpass nocommands resetkeys resetchannels\n"
        f"user slipway_admin on >{ADMIN_PASSWORD} resetkeys resetchannels -@all +acl|setuser +acl|deluser "
        "+acl|list +acl|save +ping\n", encoding="utf-8")
    (tmp / "redis.conf").write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp}\nsave \"\"\nappendonly no\naclfile {acl}\n", encoding="utf-8")
    proc = subprocess.Popen(["redis-server", str(tmp / "redis.conf")], stdout=(tmp / "log").open("wb"),
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            if time.monotonic() > deadline:
                pytest.fail(f"redis-server did not start: {(tmp / 'log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield Server(port=port, acl_file=acl)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


def _task(server: Server, users: str, *, accounts: str = "acl", password: str = ADMIN_PASSWORD,
          port: str = "", check: str = "false") -> str:
    return f"""
        - name: Users
          slipway.core.redis_users:
            host: 127.0.0.1
            port: {port or server.port}
            accounts: {accounts}
            login_user: slipway_admin
            login_password: "{password}"
            users: {users}
          register: out
          ignore_errors: true
          check_mode: {check}
    """


def _users(notes_password: str = SERVICE_PASSWORD) -> str:
    return (f'[{{name: notes-api, password: "{notes_password}", rules: "{RULES.format(p="notes-api:")}", '
            'key_prefix: "notes-api:"}, '
            f'{{name: jotter, password: "{OTHER_PASSWORD}", rules: "{RULES.format(p="jotter:")}", '
            'key_prefix: "jotter:"}]')


def _run(tmp_path: Path, server: Server, *extra: str, **task: str) -> dict[str, object]:
    result_file = tmp_path / "out.json"
    users = task.pop("users", _users())
    done = play(tmp_path, _task(server, users, **task) + dump_task("out", result_file), *extra)
    assert done.returncode == 0, done.stdout + done.stderr
    for secret in (ADMIN_PASSWORD, SERVICE_PASSWORD, OTHER_PASSWORD):
        assert secret not in done.stdout + done.stderr
        assert secret not in result_file.read_text(encoding="utf-8")
    return loaded(result_file)


def test_users_are_made_with_exactly_their_rights_and_saved(tmp_path: Path, server: Server) -> None:
    out = _run(tmp_path, server, "-vvv")
    assert out.get("failed") is not True, out
    assert out["changed"] is True
    assert out["users"] == [{"name": "notes-api", "changed": True}, {"name": "jotter", "changed": True}]
    assert out["saved"] is True
    assert server.cli("notes-api", SERVICE_PASSWORD, "SET", "notes-api:a", "1") == "OK"
    assert "NOPERM" in server.cli("notes-api", SERVICE_PASSWORD, "GET", "jotter:a")
    assert "NOPERM" in server.cli("notes-api", SERVICE_PASSWORD, "FLUSHALL")
    saved = server.acl_file.read_text(encoding="utf-8")
    assert "user notes-api on" in saved and "user jotter on" in saved
    assert "slipway-probe" not in server.admin("ACL", "LIST") + saved
    # The admin manages users and nothing else: it cannot read what it just let a service write.
    assert "NOPERM" in server.admin("GET", "notes-api:a")


def test_a_second_run_changes_nothing_and_a_rotated_password_changes_one_user(tmp_path: Path,
                                                                                server: Server) -> None:
    _run(tmp_path, server)
    again = _run(tmp_path, server)
    assert again["changed"] is False
    assert "saved" not in again
    rotated = _run(tmp_path, server, users=_users("notes-rotated-pw-0b9d"))  # pragma: allowlist secret
    assert rotated["users"] == [{"name": "notes-api", "changed": True}, {"name": "jotter", "changed": False}]
    assert server.cli("notes-api", "notes-rotated-pw-0b9d", "PING") == "PONG"  # pragma: allowlist secret
    assert "WRONGPASS" in server.cli("notes-api", SERVICE_PASSWORD, "PING")


def test_a_user_changed_by_hand_is_put_back(tmp_path: Path, server: Server) -> None:
    _run(tmp_path, server)
    assert server.admin("ACL", "SETUSER", "notes-api", "~*") == "OK"  # someone widened it on the server
    out = _run(tmp_path, server)
    assert out["users"] == [{"name": "notes-api", "changed": True}, {"name": "jotter", "changed": False}]
    assert "NOPERM" in server.cli("notes-api", SERVICE_PASSWORD, "GET", "jotter:a")


def test_check_mode_reports_without_changing(tmp_path: Path, server: Server) -> None:
    out = _run(tmp_path, server, check="true")
    assert out["changed"] is True
    listed = server.admin("ACL", "LIST")
    assert "notes-api" not in listed and "slipway-probe" not in listed


def test_console_accounts_are_checked_and_the_missing_or_read_only_ones_named(tmp_path: Path,
                                                                               server: Server) -> None:
    _run(tmp_path, server)  # notes-api and jotter exist now, as if made in a console
    assert server.admin("ACL", "SETUSER", "jotter", "reset", "on", f">{OTHER_PASSWORD}", "~*", "+@read") == "OK"
    users = _users()[:-1] + ', {name: gone, password: "x-unset-pw", key_prefix: "gone:"}]'  # pragma: allowlist secret
    out = _run(tmp_path, server, users=users, accounts="console")
    assert out["failed"] is True
    assert out["users"] == [{"name": "notes-api", "works": True}, {"name": "jotter", "works": False},
                            {"name": "gone", "works": False}]
    msg = str(out["msg"])
    assert "account jotter cannot write jotter:slipway-check" in msg and "Read/Write" in msg
    assert "account gone cannot log in" in msg and "console" in msg
    assert "notes-api" not in msg
    assert server.cli("notes-api", SERVICE_PASSWORD, "EXISTS", "notes-api:slipway-check") == "0"


def test_a_wrong_admin_password_or_no_server_fails_naming_the_server(tmp_path: Path, server: Server) -> None:
    wrong = _run(tmp_path, server, password="not-the-admin-pw")  # noqa: S106  # pragma: allowlist secret
    assert wrong["failed"] is True
    assert f"Redis at 127.0.0.1:{server.port} refused slipway_admin" in str(wrong["msg"])
    closed = _run(tmp_path, server, port=str(_free_port()))
    assert closed["failed"] is True
    assert "cannot reach Redis at 127.0.0.1:" in str(closed["msg"])
