#!/usr/bin/python
"""Documentation of the slipway.core.host_command action (plugins/action/host_command.py does the work)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: host_command
short_description: Run Slipway's host program, installing or updating it first when the host has another build
description:
  - Calls O(program) with C(--expect-build <the controller's build>) and the quoted O(argv), with O(stdin) on its
    standard input, through the connection and become, without shipping a Python module to the host (about 0.2 s
    less per call than M(ansible.builtin.command)).
  - When the host's program is missing, another build (exit 4) or an older single-file program, the action installs
    the controller's build (one zipapp built from the slipway_core package) at O(artifact), links C(slipway-release)
    and C(slipway-proxy) to it beside O(program), and calls again. In check mode it installs nothing and runs a
    temporary copy instead.
  - Returns rc, stdout, stderr and their lines, C(answer) (stdout read in the contract's result schema) and
    C(installed). Reports changed on every run and failed when rc is not 0; set changed_when and failed_when.
options:
  argv:
    description: The program's arguments (after C(--expect-build)). Each is quoted for the host's shell.
    type: list
    elements: str
    required: true
  stdin:
    description: Text for the program's standard input (never put on the command line).
    type: str
  program:
    description: The command to call (a link to the installed zipapp).
    type: str
    default: /usr/local/sbin/slipway-release
  artifact:
    description: Where the zipapp is installed.
    type: str
    default: /usr/local/lib/slipway/slipway-host.pyz
attributes:
  check_mode:
    support: none
    description: "Like M(ansible.builtin.command), skipped in check mode unless the task sets C(check_mode: false)."
author: Slipway
"""

EXAMPLES = r"""
- name: Take the deploy lock
  slipway.core.host_command:
    argv: [--root, /var/lib/slipway/services, begin, notes-api, --run-id, "{{ run_id }}"]
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
answer:
  description: stdout read as a result of the contract (result unknown when it is not one).
  type: dict
  returned: always
installed:
  description: Whether this call installed the controller's build first.
  type: bool
  returned: always
"""

if __name__ == "__main__":
    raise SystemExit("slipway.core.host_command is an action: it runs on the controller, not as a module")
