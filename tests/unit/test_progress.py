"""Issue 14, item 10: a line while a long phase runs (outside GitHub too), and GitHub workflow commands escaped.
Events are hand-written dicts shaped like ansible-runner's (no ansible-runner process is started here)."""

from __future__ import annotations

import io
import time
from typing import Any

from slipway.events import EventHandler
from slipway.github_commands import annotation, escape_data, escape_property


def ev(kind: str, **data: Any) -> dict[str, Any]:
    return {"event": kind, "event_data": data}


def wait_for(out: io.StringIO, text: str, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if text in out.getvalue():
            return True
        time.sleep(0.02)
    return False


def test_a_long_phase_prints_still_in_lines_outside_github() -> None:
    out = io.StringIO()
    handler = EventHandler(out, github=False, redact=lambda s: s, heartbeat=0.05)
    handler(ev("playbook_on_task_start", task="image | pull the release image"))
    assert wait_for(out, "  still in image (")
    handler(ev("playbook_on_task_start", task="migrate | run alembic"))
    assert wait_for(out, "  still in migrate (")
    handler(ev("playbook_on_stats"))
    handler.finish()
    settled = out.getvalue()
    time.sleep(0.3)
    assert out.getvalue() == settled  # no phase open: no more lines
    lines = settled.splitlines()
    assert lines.index("  still in image (0s)") < next(i for i, x in enumerate(lines) if x.startswith("  image "))


def test_heartbeat_off() -> None:
    out = io.StringIO()
    handler = EventHandler(out, github=False, redact=lambda s: s, heartbeat=None)
    handler(ev("playbook_on_task_start", task="image | pull"))
    time.sleep(0.2)
    handler.finish()
    assert "still in" not in out.getvalue()


def test_error_annotations_are_escaped() -> None:
    """GitHub's rules: data % -> %25, CR -> %0D, LF -> %0A; properties also : -> %3A and , -> %2C."""
    out = io.StringIO()
    handler = EventHandler(out, github=True, redact=lambda s: s)
    handler(ev("runner_on_failed", host="web-1", task="migrate | 100% done::x", res={"msg": "m"}))
    assert "::error title=slipway::failed: web-1: migrate | 100%25 done::x\n" in out.getvalue()


def test_escape_rules() -> None:
    assert escape_data("a%b\r\nc") == "a%25b%0D%0Ac"
    assert escape_property("t:1,2%\n") == "t%3A1%2C2%25%0A"
    assert annotation("warning", "x\ny", title="a,b") == "::warning title=a%2Cb::x%0Ay"
