"""`slipway unlock`: release a service's deploy lock whoever holds it (a run killed with kill -9, a controller that
vanished), with a reason the host's history keeps; and the reason given when a cancelled run releases its own."""

from __future__ import annotations

import argparse

from slipway.exitcodes import InputError
from slipway_core import contract

UNLOCKED_KEY = "slipway_unlocked"  # what playbooks/unlock.yml reports: {host, service, released, note, reason}
CANCELLED = "the run was cancelled (SIGTERM or SIGINT)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--service", required=True, help="the service whose lock to release")
    parser.add_argument(
        "--reason", required=True, help="why (kept in the service's history on each host), e.g. 'ci runner killed'"
    )


def extravars(args: argparse.Namespace) -> dict[str, str]:
    """The unlock playbook's variables for `slipway unlock`; the reason refused (exit 2) before any host."""
    if args.command != "unlock":
        return {}
    try:
        reason = contract.check_reason(args.reason)
    except contract.InputRefused as exc:
        raise InputError(str(exc)) from None
    return {"slipway_unlock_force": "true", "slipway_unlock_reason": reason}
