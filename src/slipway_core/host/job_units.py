"""`slipway-release jobs sync [--plan]`: the scheduled jobs follow the release, in ONE call on each host
(docs/services.md, "Scheduled jobs"; the app_release role's tasks/jobs_follow.yml, after a one-VM or a cluster
rollout). It replaces a find/stop/remove/copy/template/reload/start task per service: on a no-op deploy it reads the
unit directory, asks systemd once whether the wanted timers are enabled and active, and changes nothing.

Input, one JSON object on stdin (no secrets: jobs.json holds none):
  job_host      true on the one host that runs the jobs (the environment's first app host); elsewhere their units go
  unit_dir      where the units are (/etc/systemd/system)
  textfile_dir  node exporter's textfile collector directory (each run's --textfile-dir)
  command       the host program as the units start it (/usr/local/sbin/slipway-release)
  registry      every service name of the registry: units whose X-Slipway-Service names none of them are removed with
                their service's jobs.json and slipway_jobs_<service>.prom (its state directory stays)
  services      the services whose jobs follow the release (their rollout did not fail), each
                {service, jobs: [{name, schedule, command, timeout}], release: {network, resources, ...}}; a service
                not listed (failed, or not in this run) keeps its units as they are
`--root` is the state directory (<root>/<service>/jobs.json; the units' `job run --root`).

For each listed service: on the job host, <root>/<service>/jobs.json and slipway-job-<service>-<job>.timer/.service
per job, written only where they differ (atomically); units of the service no longer wanted are removed, their timers
stopped and disabled first. `systemctl daemon-reload` only when a unit changed; a timer whose units changed is
restarted, a wanted timer not enabled is enabled, one not active started.

Answer: {"changed", "plan", "installed", "removed", "restarted", "enabled", "started", "stopped", "jobs_files",
"daemon_reload"} (with --plan: what would be done; nothing is). Exit 0 done, 1 systemctl or the file system failed
(the answer lists what the call set out to do, `error` what failed; the next call picks up from what is on disk and
what systemd says), 2 bad input (refused before anything is touched, naming the field).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from typing import Any, Callable, Dict

from slipway_core import contract, job_rules
from slipway_core.host.jobs import RELEASE_KEYS
from slipway_core.host.system import Clock, read_json, tail_text, write_json, write_text

PREFIX = "slipway-job-"
SUFFIXES = (".service", ".timer")
FIELDS = ("job_host", "unit_dir", "textfile_dir", "command", "registry", "services")
# A path that goes into a unit's ExecStart unquoted: no space, no quote, no '%' (a systemd specifier).
PATH_RE = re.compile(r"/[A-Za-z0-9._/-]*")
PATH_RULE = "give an absolute path of letters, digits, '.', '_', '-' and '/'"
OWNER_RE = re.compile(r"^X-Slipway-Service=(.*)$", re.MULTILINE)
HEADER = ("# Written by slipway-release jobs sync (the app_release role; docs/services.md, \"Scheduled jobs\"):\n"
          "# the next deploy overwrites any change made here.\n")

Systemctl = Callable[..., str]
Settings = Dict[str, Any]


class SystemdError(Exception):
    """systemctl failed; the message names the command and systemd's complaint."""


def systemctl(*args: str) -> str:
    """systemctl on this host (one process per call): its stdout, or SystemdError."""
    try:
        proc = subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=120,  # noqa: S603, S607
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise SystemdError(f"systemctl {' '.join(args)}: {err}") from err
    if proc.returncode != 0:
        raise SystemdError(f"systemctl {' '.join(args)} failed (exit {proc.returncode}): "
                           f"{tail_text(proc.stderr, 4) or 'no output'}")
    return proc.stdout


# ------------------------------------------------------------------------------------------------------ the input
def _refuse(where: str, what: str) -> contract.InputRefused:
    return contract.InputRefused(f"jobs sync: {where}: {what}")


def _path(where: str, value: Any) -> str:
    if not isinstance(value, str) or not PATH_RE.fullmatch(value):
        raise _refuse(where, f"{contract.shown(value)} is not usable: {PATH_RULE}")
    return value


def _service(where: str, value: Any) -> dict[str, Any]:
    """One entry of `services`, checked: {service, jobs (checked, by name), release}."""
    if not isinstance(value, dict):
        raise _refuse(where, "must be a map with service, jobs and release")
    try:
        name = contract.check_service_name(value.get("service"))
    except contract.InputRefused as err:
        raise _refuse(f"{where}.service", str(err)) from None
    jobs = value.get("jobs")
    if not isinstance(jobs, list):
        raise _refuse(f"{where}.jobs", f"{contract.shown(jobs)} is not a list of jobs (the registry filter's jobs)")
    checked = []
    for index, job in enumerate(jobs):
        if not isinstance(job, dict):
            raise _refuse(f"{where}.jobs[{index}]", "must be a map with name, schedule, command and timeout")
        try:
            checked.append(job_rules.check_job(job.get("name"), {k: v for k, v in job.items() if k != "name"}))
        except contract.InputRefused as err:
            raise _refuse(f"{where}.jobs[{index}]", str(err)) from None
    release = value.get("release")
    if not isinstance(release, dict):
        raise _refuse(f"{where}.release", f"{contract.shown(release)} is not a map of {', '.join(RELEASE_KEYS)}")
    unknown = sorted(set(release) - set(RELEASE_KEYS))
    if unknown:  # jobs.json holds no secret: nothing but the settings a job's container takes
        raise _refuse(f"{where}.release.{unknown[0]}", f"not a setting of a job's container; give only "
                                                       f"{', '.join(RELEASE_KEYS)}")
    return {"service": name, "jobs": {job["name"]: job for job in checked}, "release": release}


def _names(value: Any) -> list[str]:
    """`registry`: the registry's service names."""
    if not isinstance(value, list):
        raise _refuse("registry", "must be the list of the registry's service names")
    names = []
    for index, name in enumerate(value):
        try:
            names.append(contract.check_service_name(name))
        except contract.InputRefused as err:
            raise _refuse(f"registry[{index}]", str(err)) from None
    return names


def check_input(data: Any, root: str) -> Settings:
    """stdin, checked whole before anything is touched: the settings, or InputRefused naming the field."""
    if not isinstance(data, dict):
        raise _refuse("stdin", f"must be a JSON object with {', '.join(FIELDS)}")
    missing = [key for key in FIELDS if key not in data]
    if missing:
        raise _refuse(missing[0], f"missing; the input has {', '.join(FIELDS)}")
    if not isinstance(data["job_host"], bool):
        raise _refuse("job_host", f"{contract.shown(data['job_host'])} is not true or false")
    registry = _names(data["registry"])
    if not isinstance(data["services"], list):
        raise _refuse("services", "must be a list of {service, jobs, release}")
    services: dict[str, dict[str, Any]] = {}
    for index, entry in enumerate(data["services"]):
        item = _service(f"services[{index}]", entry)
        if item["service"] not in registry:
            raise _refuse(f"services[{index}].service", f"{item['service']} is not in registry")
        if item["service"] in services:
            raise _refuse(f"services[{index}].service", f"{item['service']} is listed twice")
        services[item["service"]] = item
    settings = {"root": _path("--root", root), "unit_dir": _path("unit_dir", data["unit_dir"]),
                "textfile_dir": _path("textfile_dir", data["textfile_dir"]),
                "command": _path("command", data["command"]),
                "job_host": data["job_host"], "registry": registry, "services": services}
    owners: dict[str, str] = {}
    for item in services.values():
        for job in item["jobs"]:
            unit = job_rules.unit_name(item["service"], job)
            if unit in owners:
                raise _refuse(f"services.{item['service']}.jobs.{job}", f"its unit {unit} is also {owners[unit]}'s")
            owners[unit] = item["service"]
    return settings


# ------------------------------------------------------------------------------------------------------ the units
def render(settings: Settings, service: str, job: dict[str, Any]) -> dict[str, str]:
    """A job's two units: {file name: content}, as tasks/jobs.yml's templates rendered them."""
    name, unit = job["name"], job_rules.unit_name(service, job["name"])
    what = f"{service}/{name}"
    run = (f"{settings['command']} --root {settings['root']} job run {service} {name} --trigger timer "
           f"--textfile-dir {settings['textfile_dir']}")
    service_text = (
        f"{HEADER}# Scheduled job {name} of {service} (docs/services.md, \"Scheduled jobs\"). Each\n"
        "# start hands one run to its own transient unit and returns: so every tick of the timer reaches the host "
        "program,\n# whose lock runs the job or records the tick as skipped when a run is still in progress. "
        f"The run's output:\n# journalctl -t {unit}\n"
        f"[Unit]\nDescription=Slipway job {what}: start one run\nX-Slipway-Service={service}\nX-Slipway-Job={name}\n"
        "Wants=docker.service\nAfter=docker.service\n\n"
        "[Service]\nType=oneshot\n"
        f"ExecStart=/usr/bin/systemd-run --no-block --collect --quiet --description=\"Slipway job {what}: one run\" "
        f"--property=SyslogIdentifier={unit} --property=RuntimeMaxSec={int(job['timeout']) + 120} -- {run}\n"
    )
    timer_text = (
        f"{HEADER}# The schedule of {service}'s job {name}: no catch-up of runs missed while\n"
        "# the host was off, no random delay.\n"
        f"[Unit]\nDescription=Slipway job {what}: its schedule\nX-Slipway-Service={service}\nX-Slipway-Job={name}\n\n"
        f"[Timer]\nOnCalendar={job['schedule']}\nPersistent=false\nRandomizedDelaySec=0\nAccuracySec=1s\n"
        f"Unit={unit}.service\n\n[Install]\nWantedBy=timers.target\n"
    )
    return {f"{unit}.service": service_text, f"{unit}.timer": timer_text}


def installed(unit_dir: str) -> dict[str, str]:
    """The job units in `unit_dir`: {file name: content}."""
    try:
        names = sorted(os.listdir(unit_dir))
    except FileNotFoundError:
        return {}
    found = {}
    for name in names:
        path = os.path.join(unit_dir, name)
        if name.startswith(PREFIX) and name.endswith(SUFFIXES) and os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as handle:
                found[name] = handle.read()
    return found


def owner(text: str) -> str | None:
    """The service a unit belongs to (its X-Slipway-Service=), or None when it names none."""
    found = OWNER_RE.search(text)
    return found.group(1).strip() if found else None


# ------------------------------------------------------------------------------------------------------- the plan
def plan(settings: Settings, systemd: Systemctl) -> dict[str, Any]:
    """What the host needs (reads only: the unit directory, the jobs files, one systemctl query)."""
    have = installed(settings["unit_dir"])
    want: dict[str, str] = {}
    files: dict[str, Any] = {}  # path -> jobs.json's data, or None: remove it
    for name, item in settings["services"].items():
        here = settings["job_host"] and bool(item["jobs"])
        for job in item["jobs"].values() if settings["job_host"] else ():
            want.update(render(settings, name, job))
        path = os.path.join(contract.StatePaths(settings["root"], name).dir, "jobs.json")
        files[path] = {"service": name, "jobs": item["jobs"], "release": item["release"]} if here else None
    following, registry = set(settings["services"]), set(settings["registry"])
    remove = []
    for unit, text in have.items():
        who = owner(text)
        if who is not None and unit not in want and (who in following or who not in registry):
            remove.append(unit)
    for gone in sorted({owner(have[unit]) or "" for unit in remove} - registry):
        if contract.SERVICE_RE.fullmatch(gone):  # a service's name only: nothing else in a unit names a path here
            files[os.path.join(contract.StatePaths(settings["root"], gone).dir, "jobs.json")] = None
            files[os.path.join(settings["textfile_dir"], f"slipway_jobs_{gone}.prom")] = None
    write = {unit: text for unit, text in sorted(want.items()) if have.get(unit) != text}
    timers = sorted(unit for unit in want if unit.endswith(".timer"))
    states = timer_states(systemd, timers) if timers else {}
    restart = [t for t in timers if t in write or t[: -len(".timer")] + ".service" in write]
    return {
        "write": write,
        "remove": sorted(remove),
        "stop": sorted(unit for unit in remove if unit.endswith(".timer")),
        "jobs_files": {p: d for p, d in sorted(files.items()) if d is not None and read_json(p) != d},
        "remove_files": sorted(p for p, d in files.items() if d is None and os.path.exists(p)),
        "restart": restart,
        "enable": [t for t in timers if states.get(t, {}).get("UnitFileState") != "enabled"],
        "start": [t for t in timers if t not in restart and states.get(t, {}).get("ActiveState") != "active"],
    }


def timer_states(systemd: Systemctl, timers: list[str]) -> dict[str, dict[str, str]]:
    """One `systemctl show` for every timer: {timer: {Id, ActiveState, UnitFileState}} (a unit systemd does not
    know has an empty UnitFileState and is inactive)."""
    out = systemd("show", "--property=Id,ActiveState,UnitFileState", *timers)
    blocks = [block for block in out.strip().split("\n\n") if block.strip()]
    states: dict[str, dict[str, str]] = {}
    for index, block in enumerate(blocks):
        fields = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        name = fields.get("Id") or (timers[index] if index < len(timers) else "")
        states[name] = fields
    return states


# ------------------------------------------------------------------------------------------------------- the sync
def sync(settings: Settings, systemd: Systemctl, dry: bool, answer: dict[str, Any]) -> dict[str, Any]:
    """Bring the host to `settings` (or, `dry`, only say what that takes); fills `answer` as it goes, so a failure
    half-way is reported with what was done."""
    todo = plan(settings, systemd)
    unit_dir = settings["unit_dir"]
    reload = bool(todo["write"] or todo["remove"])
    answer.update(
        plan=dry, installed=sorted(todo["write"]), restarted=todo["restart"], enabled=todo["enable"],
        started=todo["start"], stopped=todo["stop"], jobs_files=sorted(todo["jobs_files"]), daemon_reload=reload,
        removed=[os.path.join(unit_dir, unit) for unit in todo["remove"]] + todo["remove_files"],
    )
    answer["changed"] = any(answer[key] for key in ("installed", "removed", "restarted", "enabled", "started",
                                                     "jobs_files"))
    if dry or not answer["changed"]:
        return answer
    if todo["stop"]:
        systemd("disable", "--now", *todo["stop"])
    for path in [os.path.join(unit_dir, unit) for unit in todo["remove"]] + todo["remove_files"]:
        os.remove(path)
    for path, data in todo["jobs_files"].items():
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        write_json(path, data, 0o600)
    for unit, text in todo["write"].items():
        write_text(os.path.join(unit_dir, unit), text, 0o644)
    if reload:
        systemd("daemon-reload")
    if todo["enable"]:
        systemd("enable", *todo["enable"])
    if todo["restart"]:
        systemd("restart", *todo["restart"])
    if todo["start"]:
        systemd("start", *todo["start"])
    return answer


# ------------------------------------------------------------------------------------------------- the command
def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `jobs` command of slipway-release: `jobs sync [--plan]`."""
    p = sub.add_parser("jobs", help="make the scheduled jobs' systemd units follow the release (stdin: JSON)")
    p.add_argument("action", choices=["sync"])
    p.add_argument("--plan", action="store_true", help="only say what would change (check mode)")


def main(docker: Any, root: str, args: argparse.Namespace, clock: Clock, systemd: Systemctl | None = None) -> int:
    """`slipway-release jobs sync`: the answer on stdout, the exit status of the module's docstring."""
    answer: dict[str, Any] = {"changed": False, "plan": bool(args.plan)}
    try:
        try:
            data = json.loads(sys.stdin.read() or "null")
        except ValueError as err:
            raise _refuse("stdin", f"not JSON: {err}") from None
        settings = check_input(data, root)
    except contract.InputRefused as err:
        print(f"slipway-release: {err}", file=sys.stderr)
        print(json.dumps({**answer, "error": str(err)}, sort_keys=True))
        return contract.EXIT_USAGE
    try:
        sync(settings, systemd or systemctl, bool(args.plan), answer)
    except (SystemdError, OSError) as err:
        print(f"slipway-release: jobs sync: {err}", file=sys.stderr)
        print(json.dumps({**answer, "error": str(err)}, sort_keys=True))
        return contract.EXIT_FAILED
    print(json.dumps(answer, sort_keys=True))
    return contract.EXIT_OK

