"""Runner events -> progress lines and run facts. The events are hand-written dicts shaped like
ansible-runner's (no ansible-runner process is started here)."""

from __future__ import annotations

import io
from typing import Any

from slipway.events import EventHandler, phase_of


def ev(kind: str, created: str = "2025-01-01T00:00:00", **data: Any) -> dict[str, Any]:
    return {"event": kind, "created": created, "event_data": data}


def test_phase_of() -> None:
    assert phase_of("preflight | read state") == ("preflight", "read state")
    assert phase_of("app_release : skip-check | compare digests") == ("skip-check", "compare digests")
    assert phase_of("Install packages") is None
    assert phase_of("preflightish | x") is None
    assert phase_of("app_release : Skip-check | Compare digests") == ("skip-check", "Compare digests")


def run(events: list[dict[str, Any]], github: bool = False) -> tuple[EventHandler, str]:
    out = io.StringIO()
    handler = EventHandler(out, github=github, redact=lambda s: s.replace("s3cret", "***"), clock=lambda: 0.0)
    for event in events:
        assert handler(event) is True
    handler.finish()
    return handler, out.getvalue()


ROLLOUT = [
    ev("playbook_on_play_start", play="Roll out"),
    ev("playbook_on_task_start", "2025-01-01T00:00:00", task="preflight | read state"),
    ev("playbook_on_task_start", "2025-01-01T00:00:01.5", task="preflight | take facts"),
    ev("playbook_on_task_start", "2025-01-01T00:00:02", task="migrate | run alembic"),
    ev(
        "runner_on_failed",
        "2025-01-01T00:00:05",
        host="h1",
        task="migrate | run alembic",
        res={"msg": "password s3cret rejected"},
    ),
    ev("runner_on_failed", host="h1", task="migrate | probe", ignore_errors=True, res={"msg": "ignored"}),
    ev("playbook_on_task_start", "2025-01-01T00:00:07", task="unlock | release the lock"),
    ev(
        "playbook_on_stats",
        "2025-01-01T00:00:08",
        failures={"h1": 1, "h2": 0},
        dark={},
        artifact_data={"slipway_results": [{"host": "h1", "result": "failed"}]},
    ),
]


def test_one_line_per_phase_with_duration() -> None:
    handler, text = run(ROLLOUT)
    assert handler.phases == [("preflight", "ok", 2.0), ("migrate", "failed", 5.0), ("unlock", "ok", 1.0)]
    lines = [line for line in text.splitlines() if line.startswith("  ") and not line.startswith("    ")]
    assert lines == [
        "  preflight   ok         2.0s",
        "  migrate     failed     5.0s",
        "  unlock      ok         1.0s",
    ]
    assert "play: Roll out" in text
    assert "::group::" not in text
    assert "failed: h1: migrate | run alembic: password *** rejected" in text  # redacted
    assert "ignored" not in text
    assert handler.facts.failures == {"h1"}
    assert handler.facts.artifact_data["slipway_results"][0]["result"] == "failed"


def test_a_phase_whose_tasks_were_all_skipped_is_not_shown() -> None:
    """The image copy is skipped when the host has the image: no `image ok 0.0s` line, no phase in the list."""
    handler, text = run([
        ev("playbook_on_task_start", "2025-01-01T00:00:00", task="lock | take the lock"),
        ev("runner_on_ok", host="h1", task="lock | take the lock"),
        ev("playbook_on_task_start", "2025-01-01T00:00:01", task="image | copy the archive"),
        ev("runner_on_skipped", host="h1", task="image | copy the archive"),
        ev("playbook_on_task_start", "2025-01-01T00:00:01", task="switch | the steps left"),
        ev("runner_on_ok", host="h1", task="switch | the steps left"),
        ev("playbook_on_stats", "2025-01-01T00:00:03"),
    ])
    assert [name for name, _, _ in handler.phases] == ["lock", "switch"]
    assert "image" not in text and "  switch      ok         2.0s" in text


def test_github_groups_fold_each_phase() -> None:
    _, text = run(ROLLOUT, github=True)
    lines = text.splitlines()
    first = lines.index("::group::preflight")
    assert lines[first + 1 : first + 5] == [
        "    preflight | read state",
        "    preflight | take facts",
        "::endgroup::",
        "  preflight   ok         2.0s",
    ]
    assert text.count("::group::") == text.count("::endgroup::") == 3
    assert "::error title=slipway::failed: h1: migrate | run alembic" in text


def test_unreachable_errors_and_open_phase() -> None:
    handler, text = run(
        [
            ev("playbook_on_task_start", task="lock | take the lock"),
            ev("runner_on_unreachable", host="h2", task="lock | take the lock", res={"msg": "timed out"}),
            {"event": "verbose", "stdout": "[ERROR]: something broke\nother line", "created": "bad"},
            {"event": "error", "stdout": "ERROR! the playbook could not be found"},
            ev("playbook_on_task_start", task="Not a phase"),
            ev("playbook_on_task_start", task="health | wait"),
        ]
    )
    assert handler.facts.dark == {"h2"}
    assert handler.facts.errors == ["[ERROR]: something broke", "ERROR! the playbook could not be found"]
    assert "unreachable: h2: lock | take the lock: timed out" in text
    assert [p for p, _, _ in handler.phases] == ["lock", "health"]  # health closed by finish()
    assert handler.phases[0][1] == "failed"


def test_failure_causes_and_output_tail_for_the_reason() -> None:
    """Issue 14, item 6: what the one-line reason of a failure outside a rollout is made of, redacted."""
    handler = EventHandler(io.StringIO(), github=False, redact=lambda s: s.replace("s3cret", "***"))
    handler(ev("runner_on_failed", host="h1", task="Probe", res={"msg": "first"}))
    handler(ev("runner_on_failed", host="h1", task="Read", res={"stderr": "token s3cret refused"}))
    handler(ev("runner_on_failed", host="h2", task="Skip me", ignore_errors=True, res={"msg": "ignored"}))
    handler(ev("runner_on_unreachable", host="h3", task="Ping", res={"msg": "timed out"}))
    handler({"event": "verbose", "stdout": "\n".join(f"line {i} s3cret" for i in range(30)) + "\n\n"})
    assert handler.facts.failure_causes == {"h1": "Read: token *** refused"}  # the last failure of each host
    assert handler.facts.output_tail == [f"line {i} ***" for i in range(10, 30)]  # the last 20, no empty ones


def test_a_failure_cause_keeps_a_refusal_s_whole_message() -> None:
    """A refusal names the problem and then the fix: a cause cut at one line (300) lost the fix."""
    handler = EventHandler(io.StringIO(), github=False, redact=lambda s: s)
    message = "a deploy across hosts is not supported yet: " + "y" * 400 + " put the roles on one host"
    handler(ev("runner_on_failed", host="localhost", task="Preflight | Check", res={"msg": message}))
    assert handler.facts.failure_causes["localhost"] == f"Preflight | Check: {message}"
    handler(ev("runner_on_failed", host="localhost", task="Preflight | Check", res={"msg": "z" * 2000}))
    assert handler.facts.failure_causes["localhost"].endswith("z...")  # still bounded


STOPPED = "Cluster | Remove the new colour everywhere: the rollout stopped"
FAIL = "Cluster | Fail: the rollout stopped (the previous release serves everywhere)"
LOCK, DRAIN = "app_release : Lock | Cluster: take the lock", "app_release : Drain | Cluster: stop the old colour"


def test_a_play_is_shown_with_its_first_task_and_a_play_with_no_host_not_at_all() -> None:
    """A cluster deploy's plays off the common path have no host (Ansible starts the play, then no task): a
    successful deploy must not print "play: Cluster | Fail: the rollout stopped"."""
    _, text = run([
        ev("playbook_on_play_start", play="Roll out"),  # the one-VM play: no host in a cluster
        ev("playbook_on_play_start", play="Cluster | Lock and compare on every app host"),
        ev("playbook_on_task_start", "2025-01-01T00:00:00", task=LOCK),
        ev("runner_on_ok", host="app-1", task=LOCK),
        ev("playbook_on_play_start", "2025-01-01T00:00:02", play=STOPPED),
        ev("playbook_on_play_start", "2025-01-01T00:00:02", play="Cluster | Drain and record on every app host"),
        ev("playbook_on_task_start", "2025-01-01T00:00:02", task=DRAIN),
        ev("runner_on_ok", host="app-1", task=DRAIN),
        ev("playbook_on_play_start", "2025-01-01T00:00:03", play=FAIL),
        ev("playbook_on_stats", "2025-01-01T00:00:03", failures={}, dark={}),
    ])
    lines = text.splitlines()
    assert [line for line in lines if line.startswith("play: ")] == [
        "play: Cluster | Lock and compare on every app host", "play: Cluster | Drain and record on every app host"]
    assert lines.index("play: Cluster | Drain and record on every app host") == lines.index("  lock        ok   "
                                                                                         "      2.0s") + 1
    assert "rollout stopped" not in text and "Roll out" not in text


def test_a_failed_loop_names_its_first_failed_item_and_why() -> None:
    """Ansible's msg for a failed loop is only "One or more items failed": the line and the run's failure cause take
    the first failed item's label and message instead."""
    why = "the rollout stopped: app-2 failed in phase health"
    task = "Cluster | Fail when the cluster rollout of a service stopped"
    res = {"msg": "One or more items failed", "failed": True, "results": [
        {"failed": False, "changed": False, "_ansible_item_label": "jotter"},
        {"failed": True, "msg": why, "_ansible_item_label": "notes-api"},
        {"failed": True, "msg": "not the first", "_ansible_item_label": "kite"},
    ]}
    handler, text = run([ev("playbook_on_task_start", task=task),
                         ev("runner_on_failed", host="app-1", task=task, res=res)])
    assert f"    failed: app-1: {task}: notes-api: {why}" in text.splitlines()
    assert handler.facts.failure_causes["app-1"] == f"{task}: notes-api: {why}"
    assert "One or more items failed" not in text and "not the first" not in text


def test_a_failed_loop_whose_items_say_nothing_keeps_ansibles_message_and_a_no_log_item_says_hidden() -> None:
    censored = "the output has been hidden due to the fact that 'no_log: true' was specified for this result"
    silent = {"msg": "One or more items failed", "results": [{"failed": True, "_ansible_item_label": "api"}]}
    hidden = {"msg": "One or more items failed", "results": [{"failed": True, "censored": censored}]}
    handler, _ = run([ev("runner_on_failed", host="app-1", task="Drain | x", res=silent),
                      ev("runner_on_failed", host="app-2", task="Drain | x", res=hidden)])
    assert handler.facts.failure_causes["app-1"] == "Drain | x: One or more items failed"
    assert handler.facts.failure_causes["app-2"] == "Drain | x: (its output is hidden: no_log)"


def test_a_failed_no_log_task_says_its_output_is_hidden() -> None:
    censored = "the output has been hidden due to the fact that 'no_log: true' was specified for this result"
    _, text = run([ev("runner_on_failed", host="h1", task="Switch | The steps left", res={"censored": censored})])
    assert "    failed: h1: Switch | The steps left: (its output is hidden: no_log)" in text.splitlines()


def test_an_item_s_reason_that_names_the_item_already_names_it_once() -> None:
    """The cluster's fail task says "<service>: the cluster rollout stopped ...": its line said "notes-api: notes-api:"
    before."""
    why = "notes-api: the cluster rollout stopped before any edge switched"
    item: dict[str, Any] = {"failed": True, "msg": why, "_ansible_item_label": "notes-api"}
    res = {"msg": "One or more items failed", "results": [item]}
    handler, text = run([ev("runner_on_failed", host="app-1", task="Cluster | Fail", res=res)])
    assert "    failed: app-1: Cluster | Fail: notes-api: the cluster rollout stopped before any edge switched" in (
        text.splitlines())
    assert "notes-api: notes-api" not in text + handler.facts.failure_causes["app-1"]
    # A label that is only the start of the reason's first word is still put before it.
    item["msg"] = "notes-api-blue is unhealthy"
    _, text = run([ev("runner_on_failed", host="app-1", task="Cluster | Fail", res=res)])
    assert "    failed: app-1: Cluster | Fail: notes-api: notes-api-blue is unhealthy" in text.splitlines()


def test_the_same_reason_from_several_hosts_of_a_task_is_said_once() -> None:
    """A stopped cluster rollout fails every app host with one verdict: the first host's line says it, the others
    name that host; every host keeps the whole reason as its failure cause. Another reason, or another task, is said
    in full."""
    verdict = {"msg": "api: the cluster rollout stopped: app-2 failed in phase health: GET /health answered 500"}
    other = {"msg": "api: something else"}
    handler, text = run([
        ev("runner_on_failed", host="app-1", task="Cluster | Fail", res=verdict),
        ev("runner_on_failed", host="app-2", task="Cluster | Fail", res=verdict),
        ev("runner_on_failed", host="app-3", task="Cluster | Fail", res=other),
        ev("runner_on_failed", host="app-4", task="Another task", res=verdict),
    ])
    lines = [line for line in text.splitlines() if "failed: " in line]
    assert lines == [
        f"    failed: app-1: Cluster | Fail: {verdict['msg']}",
        "    failed: app-2: Cluster | Fail: the same as app-1",
        "    failed: app-3: Cluster | Fail: api: something else",
        f"    failed: app-4: Another task: {verdict['msg']}",
    ]
    assert handler.facts.failure_causes["app-2"] == f"Cluster | Fail: {verdict['msg']}"


def test_a_failure_the_play_goes_on_after_shows_in_its_phase_only() -> None:
    """A cluster rollout's host that fails its gate (failed_when, ignore_errors: the verdict after it decides for
    every host) showed `health ok`: its phase now says failed, with no failure line, no annotation and no cause of
    the run (the run's own fail task says why); another host's ok in the same phase does not undo it."""
    task = "app_release : Health | Cluster: Start the new colour and gate it"
    censored = {"censored": "the output has been hidden due to the fact that 'no_log: true' was specified"}
    handler, text = run([
        ev("playbook_on_task_start", "2025-01-01T00:00:00", task=task),
        ev("runner_on_ok", host="app-1", task=task, res={"changed": True}),
        ev("runner_on_failed", host="app-2", task=task, ignore_errors=True, res=censored),
        ev("playbook_on_task_start", "2025-01-01T00:00:23", task="app_release : Unlock | Cluster: Remove"),
        ev("runner_on_ok", host="app-1", task="app_release : Unlock | Cluster: Remove"),
    ], github=True)
    assert handler.phases == [("health", "failed", 23.0), ("unlock", "ok", 0.0)]
    assert "failed: " not in text and "::error" not in text
    assert handler.facts.failure_causes == {} and handler.facts.failures == set()
