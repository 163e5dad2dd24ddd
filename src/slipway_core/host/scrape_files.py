"""`slipway-release targets --dir DIR`: the Prometheus file_sd files of the services' published colours, on the
monitoring host, after a cluster rollout switched every edge (docs/topology.md, "Monitoring across hosts").

stdin: the cluster rollout's scrape plan (slipway_core.cluster_rollout.scrape_plan, {"plan": [{service, colour,
version, hosts: {app host: ["<address>:<port>", ...]}}, ...]}): one call for every service and app host of the
rollout. Each file `<service>.<host>.json` (slipway_core.cluster.scrape_files) is written atomically, and only when
its content changes (Prometheus re-reads file_sd files by itself: no reload). A file of a service of the plan for a
host the plan does not name (an app host removed from the inventory, or one no longer published) is removed, so
Prometheus stops scraping it; the one-VM file `<service>.json` and other services' files are left as they are.

Answer: one JSON object on stdout, {"written": [names], "unchanged": [names], "removed": [names]} (+ "error"); exit 0
done, 1 the directory is missing (Prometheus is not provisioned on this host yet: nothing written), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from slipway_core import cluster, contract
from slipway_core.host.system import Clock, write_text


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("targets", help="write the file_sd files of a cluster rollout's published colours (stdin: JSON)")
    p.add_argument("--dir", required=True, help="Prometheus' file_sd directory (targets/)")


def write(directory: str, plan: Any) -> dict[str, list[str]]:
    """Write every file of `plan` into `directory` (refused as a whole, before any write, when any part is bad)."""
    files = cluster.scrape_files(plan)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{directory} does not exist: provision Prometheus on this host (playbooks/infra.yml)")
    answer: dict[str, list[str]] = {"written": [], "unchanged": [], "removed": []}
    for name, entries in sorted(files.items()):
        path, text = os.path.join(directory, name), json.dumps(entries, indent=2, sort_keys=True) + "\n"
        try:
            with open(path, encoding="utf-8") as handle:
                same = handle.read() == text
        except OSError:
            same = False
        if not same:
            write_text(path, text, 0o644)
        answer["unchanged" if same else "written"].append(name)
    services = {entries[0]["labels"]["service"] for entries in files.values()}
    for name in sorted(os.listdir(directory)):
        if name not in files and stale_host_file(name, services):
            os.remove(os.path.join(directory, name))
            answer["removed"].append(name)
    return answer


def stale_host_file(name: str, services: set[str]) -> bool:
    """Whether `name` is an app host's file (cluster.scrape_file_name) of one of `services`."""
    parsed = cluster.scrape_file_of(name)
    return parsed is not None and parsed[0] in services


def main(docker: Any, root: str, args: argparse.Namespace, clock: Clock) -> int:
    """The command's answer on stdout, its exit status as the module's docstring says."""
    try:
        try:
            data = json.loads(sys.stdin.read() or "null")
        except ValueError as err:
            raise contract.InputRefused(f"targets: stdin is not JSON: {err}") from None
        answer: dict[str, Any] = write(args.dir, (data if isinstance(data, dict) else {}).get("plan"))
    except contract.InputRefused as err:
        print(f"slipway-release: {err}", file=sys.stderr)
        print(json.dumps({"error": str(err)}, sort_keys=True))
        return contract.EXIT_USAGE
    except OSError as err:
        print(f"slipway-release: targets: {err}", file=sys.stderr)
        print(json.dumps({"error": str(err)}, sort_keys=True))
        return contract.EXIT_FAILED
    print(json.dumps(answer, sort_keys=True))
    return contract.EXIT_OK
