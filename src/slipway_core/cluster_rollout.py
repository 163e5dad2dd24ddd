"""The cluster rollout's decisions, on the controller (docs/rollout.md, "Across hosts"): what each app host and edge
answered in each phase, and, from all of them, whether a service goes on, is a noop, or failed (naming the host and
the phase). playbooks/deploy.yml runs one play per phase; the linear strategy is the barrier, and these rules,
through the collection's filters, decide between the plays. Hosts never need this module.

A host's record, folded from what its tasks registered (the collection's slipway.core.cluster_host_record filter):
service -> {phases, result, failed_phase, message, colour, todo, version, previous_version, migration_revision,
published}. `phases` lists the phases the host passed; a
host that should have passed a phase and has no record of it did not answer (unreachable), and is named so.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from .contract import CONTINUE, other_colour, parse_result

# The phases, in order, and who runs each: every app host, the first app host only, every edge.
PHASES = ("begin", "prepare", "start", "switch", "settle")
_FIRST_ONLY = ("prepare",)
_EDGE = ("switch",)
_GOOD = (CONTINUE, "noop", "planned", "deployed")
# What the start phase does on an app host; a begin that answers none of them left (`begin --gate-when-ready`: the
# common path, nothing had to run once before) passed the start phase in the same call.
_START_STEPS = ("start", "health")
# What the cluster plays do: a deploy (begin) or a rollback (rollback --begin); the phases are the same.
ACTIONS = ("deploy", "rollback")


def record(previous: Mapping[str, Any] | None, phase: str, service: str, stdout: str, *, rc: int,
           stderr: str = "") -> dict[str, Any]:
    """This host's record after its answer in `phase` for `service` (the host program's stdout, its exit code)."""
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}")
    # An edge answers slipway-proxy's status (its exit code says it all); an app host the contract's result.
    answer = {} if phase in _EDGE else parse_result(stdout)
    mine = dict((previous or {}).get(service) or {})
    ok = rc == 0 and (phase in _EDGE or answer["result"] in _GOOD)
    passed = [p for p in mine.get("phases", []) if p != phase]
    mine["phases"] = [*passed, phase] if ok else passed
    if ok and phase == "begin" and _gated(answer):
        mine["phases"] = [*[p for p in mine["phases"] if p != "start"], "start"]
    for key in ("result", "colour", "todo", "version", "previous_version", "migration_revision", "published"):
        if answer.get(key) not in (None, "", []) or (key == "todo" and key in answer):
            mine[key] = answer[key]
    if not ok:
        why = str(answer.get("message") or stderr.strip() or f"exit {rc}, no answer").strip()
        mine.update({"result": "failed" if answer.get("result") != "unknown" else "unknown",
                     "failed_phase": str(answer.get("failed_phase") or phase), "message": why[:1000]})
    return {**(previous or {}), service: mine}


def _gated(answer: Mapping[str, Any]) -> bool:
    """A begin that started the new colour and passed its gate already: it goes on with none of the start phase's
    steps left (a noop or a plan is no start)."""
    todo = answer.get("todo") or []
    return answer.get("result") == CONTINUE and bool(todo) and not set(todo) & {*_START_STEPS, "image", "backup",
                                                                                 "migrate"}


def record_failure(previous: Mapping[str, Any] | None, phase: str, service: str, step: str,
                   message: str) -> dict[str, Any]:
    """This host's record after a step the controller ran itself failed (the backup on the data host)."""
    mine = dict((previous or {}).get(service) or {})
    mine.update({"phases": [p for p in mine.get("phases", []) if p != phase], "result": "failed",
                 "failed_phase": step, "message": message.strip()[-1000:] or f"{step} failed"})
    return {**(previous or {}), service: mine}


def _missing(phase: str) -> str:
    return f"did not answer in phase {phase} (unreachable, or its task did not run)"


def verdict(records: Mapping[str, Any], apps: Sequence[str], edges: Sequence[str], service: str,  # noqa: PLR0917
            through: str, action: str = "deploy") -> dict[str, Any]:
    """Whether `service` goes on after phase `through` (each host's record in `records`: host -> its fact or None).

    {go, noop, failed: [{host, phase, message}], colour, version, rebegin: app hosts that answered noop while others
    go on (they begin again with --force: a release is new everywhere or nowhere) and app hosts without a release that
    would start another colour than the others (they begin again with `first_colour`), first_colour, summary}. The
    phases are read in order and the first with a failure decides (the later ones did not run). `action` rollback:
    every app host must roll back from the same live release to the same one (none begins again)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    failed: list[dict[str, str]] = []
    colours: dict[str, str] = {}
    noop: list[str] = []
    for phase in PHASES[: PHASES.index(through) + 1]:
        hosts = edges if phase in _EDGE else apps[:1] if phase in _FIRST_ONLY else apps
        for host in hosts:
            mine = (records.get(host) or {}).get(service) or {}
            # The first app host with nothing to prepare passes prepare without a play; one whose image, backup or
            # migration failed does not (its failed answer leaves no `todo`), one that failed later (its gate) did:
            # the start phase names it, beside every other app host that failed there.
            skipped = phase in _FIRST_ONLY and not _prepares(mine) and (
                mine.get("result") not in ("failed", "unknown") or mine.get("failed_phase") in _START_STEPS)
            if phase in mine.get("phases", []) or skipped:
                if phase == "begin":
                    colours[host] = str(mine.get("colour") or "")
                    noop += [host] if mine.get("result") == "noop" else []
                continue
            failed.append({"host": host, "phase": str(mine.get("failed_phase") or phase),
                           "message": str(mine.get("message") or _missing(phase))})
        if phase == "begin" and not failed and action == "rollback":
            failed += _releases_differ(records, apps, service)
        if phase == "begin" and not failed:
            going = [h for h in apps if h not in noop]
            if not going:
                return {"go": False, "noop": True, "failed": [], "colour": "", "version": "", "rebegin": [],
                        "first_colour": "", "summary": ""}
            # The colour each host starts (a noop host: the other one, once begun again with --force).
            starts = {h: other_colour(colours[h]) if h in noop else colours[h] for h in apps}
            if len(set(starts.values())) > 1:
                fresh = [h for h in going if not (records.get(h) or {}).get(service, {}).get("previous_version")]
                settled = sorted({starts[h] for h in apps if h not in fresh})
                if fresh and len(settled) == 1 and through == "begin":
                    # App hosts without a release (just added) begin again, asked for the colour the others start.
                    late = [h for h in fresh if starts[h] != settled[0]]
                    return {"go": True, "noop": False, "failed": [], "colour": settled[0],
                            "version": _version(records, going, service), "rebegin": noop + late,
                            "first_colour": settled[0], "summary": ""}
                found = ", ".join(f"{starts[h]} on {h}" for h in apps)
                failed.append({"host": apps[-1], "phase": "begin", "message": (
                    f"the app hosts would start different colours ({found}): their live releases differ; "
                    "docs/runbook.md, \"Add an app host\", says how to align them")})
            elif noop and through != "begin":
                failed.append({"host": noop[0], "phase": "begin",
                               "message": f"{', '.join(noop)} did not begin again with --force"})
        if failed:
            break
    going = [h for h in apps if h in colours and h not in noop]
    return {"go": not failed, "noop": False, "failed": failed, "colour": colours[going[0]] if going else "",
            "version": _version(records, going, service),
            "rebegin": noop if through == "begin" and not failed else [], "first_colour": "",
            "summary": summary(service, failed, action)}


def _version(records: Mapping[str, Any], going: Sequence[str], service: str) -> str:
    """The version the going app hosts start (a rollback's: the release it goes back to)."""
    return str(((records.get(going[0]) or {}).get(service) or {}).get("version") or "") if going else ""


def _releases_differ(records: Mapping[str, Any], apps: Sequence[str], service: str) -> list[dict[str, str]]:
    """A rollback goes back on every app host from the same live release to the same release, or nowhere."""
    mine = {h: ((records.get(h) or {}).get(service) or {}) for h in apps}
    pairs = {h: (str(m.get("version") or ""), str(m.get("previous_version") or "")) for h, m in mine.items()}
    odd = [h for h in apps if pairs[h] != pairs[apps[0]]]
    if not odd:
        return []
    found = "; ".join(f"{h}: back to {pairs[h][0] or 'none'} from {pairs[h][1] or 'none'}" for h in apps)
    return [{"host": odd[0], "phase": "begin", "message": (
        f"the app hosts' releases differ ({found}): a rollback goes back to the same release on every app host. "
        "Deploy the version you want instead (slipway deploy --service S --version V: the cluster rollout "
        "aligns them)")}]


def _prepares(mine: Mapping[str, Any]) -> bool:
    """The first app host has something to do before the start: the image, a backup or the migration."""
    return bool(set(mine.get("todo") or []) & {"image", "backup", "migrate"})


def _stopped(service: str, named: str, action: str) -> str:
    if action == "rollback":
        return (f"{service}: the cluster rollback stopped before any edge switched or was switched back: {named}. What "
                "it started was stopped or removed on every app host that answered; the live release serves everywhere")
    return (f"{service}: the cluster rollout stopped before any edge switched or was switched back: {named}. The new "
            "colour was removed from every app host that answered; the previous release serves everywhere")


def summary(service: str, failed: Sequence[Mapping[str, Any]], action: str = "deploy") -> str:
    """One line naming each failed host, its phase and why; '' when none failed."""
    if not failed:
        return ""
    return _stopped(service, "; ".join(f"{f['host']} failed in phase {f['phase']}: {f['message']}" for f in failed),
                    action)


def host_failure(service: str, failed: Sequence[Mapping[str, Any]], host: str, apps: Sequence[str],
                 action: str = "deploy") -> dict[str, str]:
    """{phase, message} of a stopped rollout on app host `host`: the phase it failed in itself, else the first
    failure's; its message (`host_summary`). {} when nothing failed."""
    if not failed:
        return {}
    own = [f for f in failed if f["host"] == host]
    return {"phase": str((own or failed)[0]["phase"]), "message": host_summary(service, failed, host, apps, action)}


def host_summary(service: str, failed: Sequence[Mapping[str, Any]], host: str, apps: Sequence[str],
                 action: str = "deploy") -> str:
    """What app host `host` says of a stopped rollout (its result, its history line): why it failed itself, if it
    did, and only the host and phase of each other app host that failed (each says why in its own result); an edge's
    failure, or an app host that did not answer (it reports nothing), in full. The rollout's one message (`summary`)
    names every reason once; a host repeating every other host's reason made a failed rollout's report say each one
    once per app host."""
    if not failed:
        return ""

    def said_elsewhere(f: Mapping[str, Any]) -> bool:
        return f["host"] != host and f["host"] in apps and f["message"] != _missing(str(f["phase"]))

    return _stopped(service, "; ".join(f"{f['host']} failed in phase {f['phase']}"
                                       + ("" if said_elsewhere(f) else f": {f['message']}") for f in failed), action)


def host_results(records: Mapping[str, Any], apps: Sequence[str], edges: Sequence[str], service: str,  # noqa: PLR0917
                 through: str, action: str = "deploy", settling: bool = False) -> list[dict[str, str]]:
    """Each host's result in the rollout, for its one history record: {host, phase (the last it passed, or the one
    it failed in), result (ok, failed, not run), message}; app hosts first, then the edges.

    `settling` (through `switch`): the record is written in the first app host's settle call, while every app host
    settles (host/rollout_record.py): when the service went on, each app host that passed every phase so far is in
    phase settle; one that then fails it has the record written again with its failure."""
    if settling and through != "switch":
        raise ValueError(f"host_results: settling is through switch, not {through!r}")
    found = verdict(records, apps, edges, service, through, action)
    settles = settling and found["go"]
    failed = {f["host"]: f for f in found["failed"]}
    out = []
    for host in [*apps, *[e for e in edges if e not in apps]]:
        mine = (records.get(host) or {}).get(service) or {}
        passed = [p for p in PHASES if p in mine.get("phases", [])]
        if host in failed:
            out.append({"host": host, "phase": failed[host]["phase"], "result": "failed",
                        "message": failed[host]["message"]})
        elif mine.get("result") in ("failed", "unknown") and mine.get("failed_phase"):  # after the verdict's phase
            out.append({"host": host, "phase": str(mine["failed_phase"]), "result": "failed",
                        "message": str(mine.get("message") or "")})
        else:
            phase = "settle" if settles and host in apps and passed else passed[-1] if passed else ""
            out.append({"host": host, "phase": phase, "result": "ok" if passed else "not run", "message": ""})
    return out


# The plays whose hosts depend on what the hosts answered before (playbooks/cluster/rollout.yml): begin and settle run
# on every app host always (settle also cleans up, records and reports).
PLAY_PHASES = ("prepare", "start", "switch")
# The plays off the common path, with no host unless one must act: a task that skips still costs a worker process per
# host on the rollout's clock (0.05-0.15 s each, more under load), a play with no host about 0.01 s.
# - rebegin: the app hosts the verdict after begin names (a noop there while new elsewhere, or a host without a release
#   that would start another colour): they begin again;
# - switch-back: the edges that switched a service while another edge failed its switch: they switch back;
# - stopped: every app host, when a service's rollout stopped: they remove its new colour (the play before settle),
#   and fail the run once it is recorded (the play after it);
# - record-again: every app host (the first still reachable writes), when a service went on but an app host did not
#   pass its settle (the old colour's stop or the record failed, or it did not answer): the rollout's record, written
#   in the first app host's settle call while the others settled, is written again with every host's final result.
OFF_PATH_PHASES = ("rebegin", "switch-back", "stopped", "record-again")


def play_hosts(records: Mapping[str, Any], apps: Sequence[str], edges: Sequence[str], phase: str,  # noqa: PLR0917
               action: str = "deploy", through: str = "switch") -> list[str]:
    """The hosts the play of `phase` has work for, from every host's record so far (the services are those the app
    hosts answered for); [] skips the play, which costs next to nothing:

    - prepare: the first app host, when a service goes on and it must get the image, back up or migrate first
      (never for a rollback: the kept images are on every app host);
    - start: each app host where a service goes on and its begin did not already start and gate the new colour;
    - switch: every edge, when a service goes on (every edge switches or none; an edge also switches back when
      another failed), else none: a noop or a failure before the switch leaves every edge as it is;
    - rebegin, switch-back, stopped, record-again (OFF_PATH_PHASES): see there. `through`: the last phase that ran,
      for stopped (`begin` in check mode: only the plan)."""
    if phase not in (*PLAY_PHASES, *OFF_PATH_PHASES):
        raise ValueError(f"unknown phase {phase!r}: the plays that may be skipped are "
                         f"{', '.join((*PLAY_PHASES, *OFF_PATH_PHASES))}")
    services = sorted({name for host in apps for name in ((records.get(host) or {}) or {})})
    if phase in OFF_PATH_PHASES:
        return _off_path_hosts(records, apps, edges, phase, action, through, services)
    before = PHASES[PHASES.index(phase) - 1]
    going = [s for s in services if verdict(records, apps, edges, s, before, action)["go"]]
    if phase == "prepare":
        first = apps[:1]
        wanted = action != "rollback" and any(_prepares((records.get(h) or {}).get(s) or {}) for h in first
                                              for s in going)
        return list(first) if wanted else []
    if phase == "start":
        return [h for h in apps if any("start" not in ((records.get(h) or {}).get(s) or {}).get("phases", [])
                                       for s in going)]
    return list(edges) if going else []


def _off_path_hosts(records: Mapping[str, Any], apps: Sequence[str], edges: Sequence[str],  # noqa: PLR0917
                    phase: str, action: str, through: str, services: Sequence[str]) -> list[str]:
    if phase == "rebegin":
        named = {h for s in services for h in verdict(records, apps, edges, s, "begin", action)["rebegin"]}
        return [h for h in apps if h in named]
    if phase == "switch-back":
        named = {e for s in services for e in switches_back(records, apps, edges, s, action)}
        return [e for e in edges if e in named]
    if phase == "record-again":
        again = any(verdict(records, apps, edges, s, "switch", action)["go"]
                    and verdict(records, apps, edges, s, "settle", action)["failed"] for s in services)
        return list(apps) if again else []
    stopped = any(verdict(records, apps, edges, s, through, action)["failed"] for s in services)
    return list(apps) if stopped else []


def switches_back(records: Mapping[str, Any], apps: Sequence[str], edges: Sequence[str], service: str,
                  action: str = "deploy") -> list[str]:
    """The edges that switch `service` back: it went on after every app host's gate but not after the switch (an
    edge failed its switch), and these had switched it. Every edge routes the new colour, or none."""
    if not verdict(records, apps, edges, service, "start", action)["go"] \
            or verdict(records, apps, edges, service, "switch", action)["go"]:
        return []
    return [e for e in edges if "switch" in (((records.get(e) or {}).get(service) or {}).get("phases") or [])]


def scrape_plan(records: Mapping[str, Any], apps: Sequence[str], edges: Sequence[str],
                services: Sequence[str], action: str = "deploy") -> list[dict[str, Any]]:
    """What the monitoring host's Prometheus scrapes once every edge switched (cluster.scrape_files' plan): for each
    service that goes on after the switch, its colour, version and each app host's `published` targets (answered
    once its gate passed; an app host whose colours are not published has none and is left out). A service that
    stopped is left out: its files keep naming the colour that still serves."""
    plan = []
    for service in services:
        found = verdict(records, apps, edges, service, "switch", action)
        hosts = {h: list(((records.get(h) or {}).get(service) or {}).get("published") or []) for h in apps}
        hosts = {h: targets for h, targets in hosts.items() if targets}
        if found["go"] and hosts:
            plan.append({"service": service, "colour": found["colour"], "version": found["version"], "hosts": hosts})
    return plan
