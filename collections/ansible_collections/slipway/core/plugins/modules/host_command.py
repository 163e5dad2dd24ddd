#!/usr/bin/python
"""Documentation of the slipway.core.host_command action (plugins/action/host_command.py does the work)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: host_command
short_description: Run a program on the host with its input on stdin, without a module wrapper
description:
  - Sends the quoted argv through the connection (with become) and the input on stdin, like
    M(ansible.builtin.command) with O(argv) and O(stdin), but without shipping a Python module to the host
    (about 0.2 s less per call). Returns rc, stdout, stderr and their lines.
  - Reports changed on every run and failed when rc is not 0; set changed_when and failed_when on the task.
  - Made for slipway-release, which answers in JSON. Environment variables of the task are not passed.
options:
  argv:
    description: The program and its arguments. Each is quoted for the host's shell.
    type: list
    elements: str
    required: true
  stdin:
    description: Text for the program's standard input (never put on the command line).
    type: str
attributes:
  check_mode:
    support: none
    description: "Like M(ansible.builtin.command), skipped in check mode unless the task sets C(check_mode: false)."
author: Slipway
"""

EXAMPLES = r"""
- name: Take the deploy lock
  slipway.core.host_command:
    argv: [/usr/local/sbin/slipway-release, --root, /var/lib/slipway, begin, notes-api]
    stdin: "{{ release | to_json }}"
  no_log: true
"""

RETURN = r"""
rc:
  description: The program's exit status.
  type: int
  returned: always
stdout:
  description: Its standard output, without the final newline.
  type: str
  returned: always
stderr:
  description: Its standard error, without the final newline.
  type: str
  returned: always
"""

if __name__ == "__main__":
    raise SystemExit("slipway.core.host_command is an action: it runs on the controller, not as a module")
