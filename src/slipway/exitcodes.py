"""Exit codes of the `slipway` command: the one place they are defined and explained."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What the exit status tells the caller (a person or a GitHub Actions step)."""

    OK = 0  # deployed, or nothing to do
    ROLLOUT_FAILED = 1  # a rollout failed and the previous release is still serving
    BAD_INPUT = 2  # the input was refused before any host was touched
    NEEDS_PERSON = 3  # a host is in a state that needs a person
    UNHEALTHY = 4  # `slipway status`: a requested service is not healthy or not serving


HELP = """\
exit codes:
  0  deployed, or nothing to do (every service already at the desired release)
  1  a rollout failed and the previous release is still serving (see the summary)
  2  bad input: nothing was touched (unknown env or service, malformed version,
     a topology the playbooks' preflight refuses,
     missing secret or unusable SSH key, missing playbook)
  3  a host needs a person: unreachable, result unknown, the run was cancelled,
     Ansible failed outside a rollout, or an unexpected error (the reason names it)
  4  status only: a requested service is not healthy or not serving (the reason
     names each service@host and why)
exec: once the command ran, the command's own exit status (124: stopped at
  --timeout); 2 and 3 as above only when it did not run (docs/cli-json.md)
job run: 0 the job ran and exited 0; 1 it failed, timed out or was skipped (a
  run was in progress); 2 and 3 as above
"""


class InputError(Exception):
    """Input refused before any host is touched; the message says exactly what to change (exit code 2)."""
