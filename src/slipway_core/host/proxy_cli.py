"""`slipway-proxy`: the edge proxy's commands (switch, switch-over, prepare, status, live, wait-drained, check,
reload, addresses), one entry of a dispatch table each, over the Proxy of src/slipway_core/host/proxy.py. main.py
dispatches here when the program is started as slipway-proxy (docs/edge-proxy.md)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Callable, Sequence

from slipway_core import contract
from slipway_core.host import addresses
from slipway_core.host.docker import Docker
from slipway_core.host.health import http_get
from slipway_core.host.proxy import SETTINGS_PATH, Confirm, Proxy, ProxyError, load_settings
from slipway_core.host.system import Clock


def proxy_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="slipway-proxy",
        description="Switch a service's live colour on the edge "
        "proxy, and report it (docs/edge-proxy.md). Exit 0 done, 1 the proxy refused or a "
        "wait timed out, 2 bad arguments or unknown service, 3 the proxy cannot be reached.",
    )
    parser.add_argument(
        "--settings", default=os.environ.get("SLIPWAY_PROXY_SETTINGS", SETTINGS_PATH), help=argparse.SUPPRESS
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("switch", help="make COLOUR live (wait until healthy), drain the other; persisted")
    p.add_argument("service")
    p.add_argument("colour", choices=contract.COLOURS)
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for health checks (30)")
    p.add_argument("--prepared", action="store_true", help="`prepare` ran since COLOUR's container started")
    p.add_argument("--verified-address", dest="verified", action="append", default=[], metavar="IP", help="the "
                   "caller's health check of COLOUR at IP just passed: mark the server there up (repeat per replica)")
    p = sub.add_parser(
        "switch-over",
        help="the rollout's one call to an edge: switch, confirm VERSION through the proxy (switch back on "
        "failure), wait until the other colour drained",
    )
    p.add_argument("service")
    p.add_argument("colour", choices=contract.COLOURS)
    p.add_argument("--version", required=True, help="the version the confirm path must name")
    p.add_argument("--confirm-path", default="", help="checked through the proxy (default: health_path, any 200)")
    p.add_argument("--tls", action="store_true", help="confirm through the HTTPS listener (443)")
    p.add_argument("--port", type=int, default=80, help="the proxy container's HTTP port (80)")
    p.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for health checks (15)")
    p.add_argument("--drain-timeout", type=float, default=30.0, help="seconds the old colour gets to drain (30)")
    p.add_argument("--prepared", action="store_true", help="`prepare` ran since COLOUR's container started")
    p.add_argument("--verified-address", dest="verified", action="append", default=[], metavar="IP",
                   help="as for switch")
    for name, text in (
        ("prepare", "start fresh health checks of an out-of-rotation COLOUR (no traffic)"),
        ("wait-drained", "wait until COLOUR has no session left (exit 1 on timeout)"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("service")
        p.add_argument("colour", choices=contract.COLOURS)
        p.add_argument("--timeout", type=float, default=60.0, help="seconds (60)")
    p = sub.add_parser("status", help="JSON: live colour, each colour's state and sessions")
    p.add_argument("service", nargs="?")
    p = sub.add_parser("live", help="print the persisted live colour")
    p.add_argument("service")
    sub.add_parser("check", help="check the installed configuration with haproxy -c")
    p = sub.add_parser("addresses", help="JSON: the network's plan and each SERVICE's colour addresses (slots kept)")
    p.add_argument("services", nargs="*", metavar="SERVICE")
    p.add_argument("--network", required=True, help="the shared network")
    p.add_argument("--addresses", default=contract.ADDRESSES_FILE, help="the services' address slots")
    p.add_argument("--dry-run", action="store_true", help="give new services a slot without saving it")
    p.add_argument("--planned-subnet", default="", help="with --dry-run: the subnet while the network does not exist")
    p = sub.add_parser("reload", help="check, then reload seamlessly")
    p.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for the new worker (15)")
    return parser


def proxy_wait_drained(proxy: Proxy, args: argparse.Namespace) -> Any:
    left = proxy.wait_drained(args.service, args.colour, args.timeout)
    if left:
        raise ProxyError(
            f"{contract.container_name(args.service, args.colour)} still has {left} session(s) after {args.timeout:g}s"
        )
    return {"service": args.service, "colour": args.colour, "sessions": 0}


def proxy_live(proxy: Proxy, args: argparse.Namespace) -> Any:
    colour = proxy.live(args.service)
    if colour is None:
        raise ProxyError(f"no live colour persisted for {args.service}")
    return colour


def proxy_switch(proxy: Proxy, args: argparse.Namespace) -> Any:
    proxy.switch(args.service, args.colour, args.timeout, args.prepared, args.verified)
    return proxy.status(args.service)


def proxy_switch_over(proxy: Proxy, args: argparse.Namespace) -> Any:
    """What a controller calls on each edge once the new colour passed its gate on every app host."""
    check = Confirm(version=args.version, path=args.confirm_path, tls=args.tls, port=args.port)
    moved = proxy.switch_over(
        args.service,
        args.colour,
        check,
        args.timeout,
        args.drain_timeout,
        prepared=args.prepared,
        verified=args.verified,
    )
    return {**proxy.status(args.service), **moved}


def proxy_prepare(proxy: Proxy, args: argparse.Namespace) -> Any:
    proxy.prepare(args.service, args.colour)
    return proxy.status(args.service)


def proxy_status(proxy: Proxy, args: argparse.Namespace) -> Any:
    if args.service:
        return proxy.status(args.service)
    return [proxy.status(name) for name in sorted(proxy.settings["services"])]


def proxy_addresses(docker: Docker, args: argparse.Namespace) -> Any:
    """Needs no proxy (the edge role asks before the proxy's configuration exists)."""
    slots = addresses.Slots(args.addresses)
    try:
        return addresses.table(
            docker, args.network, args.services, slots, write=not args.dry_run, planned=args.planned_subnet
        )
    except (addresses.AddressError, contract.InputRefused) as err:
        raise ProxyError(str(err), contract.EXIT_USAGE) from err


def proxy_check(proxy: Proxy, args: argparse.Namespace) -> Any:
    proxy.check_config()
    return {"valid": True}


PROXY_COMMANDS: dict[str, Callable[[Proxy, argparse.Namespace], Any]] = {
    "switch": proxy_switch,
    "switch-over": proxy_switch_over,
    "prepare": proxy_prepare,
    "status": proxy_status,
    "live": proxy_live,
    "wait-drained": proxy_wait_drained,
    "check": proxy_check,
    "reload": lambda proxy, args: proxy.reload(args.timeout),
}


def proxy_main(argv: Sequence[str]) -> int:
    args = proxy_parser().parse_args(argv)
    try:
        if args.command == "addresses":
            result = proxy_addresses(Docker(), args)
        else:
            proxy = Proxy(load_settings(args.settings), Docker(), Clock(), http_get)
            result = PROXY_COMMANDS[args.command](proxy, args)
    except ProxyError as err:
        print(f"slipway-proxy: {err}", file=sys.stderr)
        return err.code
    print(result if isinstance(result, str) else json.dumps(result, indent=2, sort_keys=True))
    return 0
