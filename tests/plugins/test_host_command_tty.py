"""slipway.core.host_command over SSH: no `ssh -tt` for the host program's calls.

Ansible's ssh connection runs a become command that has no input under `ssh -tt`; the terminal merges the command's
stderr into its stdout, so a missing slipway-proxy ("not found" on stdout, exit 127) was not taken for a missing
program and the provision failed instead of installing it (found by molecule/cluster, which runs the real thing
over SSH: the edge gets slipway-proxy there). These tests pin the switch itself with a stand-in connection: off for
the call, back on afterwards (even when the call raises), untouched on connections without the option.
"""

from __future__ import annotations

import importlib.util
from types import ModuleType
from typing import Any

import plugin_loader
import pytest

ACTION = plugin_loader.PROJECT / "collections/ansible_collections/slipway/core/plugins/action/host_command.py"


def load_action() -> ModuleType:
    spec = importlib.util.spec_from_file_location("slipway_host_command_action", ACTION)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Connection:
    """The part of a connection plugin the action touches: get_option (KeyError when undefined), set_option."""

    def __init__(self, **options: Any) -> None:
        self.options = dict(options)

    def get_option(self, name: str) -> Any:
        if name not in self.options:
            raise KeyError(name)
        return self.options[name]

    def set_option(self, name: str, value: Any) -> None:
        self.options[name] = value


def action_with(connection: Connection, execute: Any) -> Any:
    action = object.__new__(load_action().ActionModule)  # no task or loader: only _call is used
    action._connection = connection
    action._low_level_execute_command = execute
    return action


def test_an_ssh_call_runs_without_a_terminal_and_turns_it_back_on() -> None:
    conn = Connection(use_tty=True)
    seen: list[Any] = []

    def execute(cmd: str, sudoable: bool, in_data: bytes | None) -> dict[str, Any]:
        seen.append((conn.options["use_tty"], cmd, sudoable, in_data))
        return {"rc": 127, "stdout": "", "stderr": "sh: 1: /usr/local/sbin/slipway-proxy: not found\n"}

    rc, out, err = action_with(conn, execute)._call("/usr/local/sbin/slipway-proxy build", None)
    assert seen == [(False, "/usr/local/sbin/slipway-proxy build", True, None)]
    assert conn.options["use_tty"] is True
    assert (rc, out, err) == (127, "", "sh: 1: /usr/local/sbin/slipway-proxy: not found")
    assert load_action().outdated(rc, out, err)  # so the action installs the program


def test_the_terminal_comes_back_when_the_call_raises() -> None:
    conn = Connection(use_tty=True)

    def execute(cmd: str, sudoable: bool, in_data: bytes | None) -> dict[str, Any]:
        raise OSError("connection lost")

    with pytest.raises(OSError, match="connection lost"):
        action_with(conn, execute)._call("true", None)
    assert conn.options["use_tty"] is True


@pytest.mark.parametrize("options", [{}, {"use_tty": False}])
def test_connections_without_a_terminal_are_left_alone(options: dict[str, Any]) -> None:
    conn = Connection(**options)
    calls: list[dict[str, Any]] = []

    def execute(cmd: str, sudoable: bool, in_data: bytes | None) -> dict[str, Any]:
        calls.append(dict(conn.options))
        return {"rc": 0, "stdout": "{}\n", "stderr": ""}

    assert action_with(conn, execute)._call("true", b"input") == (0, "{}", "")
    assert calls == [options] and conn.options == options


def test_the_merged_output_of_a_terminal_did_not_count_as_missing() -> None:
    # What `ssh -tt` returned before: the shell's message on stdout. That is why the terminal has to go.
    assert not load_action().outdated(127, "sh: 1: /usr/local/sbin/slipway-proxy: not found", "")
