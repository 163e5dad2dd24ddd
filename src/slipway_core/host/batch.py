"""`slipway-release batch`: several of this program's commands in one call, one after another in this process: one
connection round trip and one start of the program instead of one each. The cluster rollout's settle runs so, on
each app host, the drain and record, the scheduled jobs' sync and, on the first app host, the rollout's one history
record (roles/app_release/tasks/cluster_settle.yml): each call was a task of its own, about 0.6 s apiece on an idle
demo cluster, then the record and the sync one task after the drain (0.36 s).

Input, one JSON object on stdin: {"calls": [{"argv": [...], "stdin": "..."}, ...]}: each argv is slipway-release's
own arguments (its global options first, as on a command line; `batch` itself is refused), `stdin` the text that
command reads (optional). No call is run unless every one is well formed.

They run in order; the first that exits non-zero ends the batch (the later ones do not run, as later tasks would not
after a failed one), unless the input says `"keep_going": true`: then every call runs whatever the ones before it
answered (the cluster's settle: the old colour's stop failing must not keep the rollout's record or the jobs' sync from
running). Answer on stdout: {"results": [{"argv", "rc", "stdout", "stderr"}, ...]}, one per call that ran. Exit 0
when every call exited 0, else the exit status of the first that failed; 2 for a bad input (nothing run).
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from typing import Any, Callable, Sequence

from slipway_core import contract

SHAPE = 'give {"calls": [{"argv": [...], "stdin": "..."}, ...]} on stdin'


def check_calls(data: Any) -> list[dict[str, Any]]:
    """The calls, or InputRefused naming what is wrong."""
    if isinstance(data, dict) and not isinstance(data.get("keep_going", False), bool):
        raise contract.InputRefused(f"batch: keep_going is true or false, not {data['keep_going']!r}")
    calls = data.get("calls") if isinstance(data, dict) else None
    if not isinstance(calls, list) or not calls:
        raise contract.InputRefused(f"batch: no calls: {SHAPE}")
    out = []
    for index, call in enumerate(calls):
        argv = call.get("argv") if isinstance(call, dict) else None
        stdin = call.get("stdin", "") if isinstance(call, dict) else None
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise contract.InputRefused(f"batch: call {index + 1} has no argv (a list of strings): {SHAPE}")
        if "batch" in argv:
            raise contract.InputRefused(f"batch: call {index + 1} is a batch itself: give its calls in this one")
        if not isinstance(stdin, str):
            raise contract.InputRefused(f"batch: call {index + 1}'s stdin is not text: {SHAPE}")
        out.append({"argv": list(argv), "stdin": stdin})
    return out


def run_one(command: Callable[[Sequence[str]], int], argv: list[str], stdin: str) -> dict[str, Any]:
    """One call of `command` (the program's own main) with `stdin`, its output and exit status kept."""
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = command(argv)
            except SystemExit as exit_:  # argparse's usage error, or a command that exits
                code = exit_.code
                rc = code if isinstance(code, int) else (0 if code is None else contract.EXIT_USAGE)
    finally:
        sys.stdin = saved
    return {"argv": argv, "rc": rc, "stdout": out.getvalue(), "stderr": err.getvalue()}


def main(command: Callable[[Sequence[str]], int]) -> int:
    """`slipway-release batch`: the answer on stdout, the exit status of the module's docstring."""
    try:
        try:
            data = json.loads(sys.stdin.read() or "null")
        except ValueError as err:
            raise contract.InputRefused(f"batch: stdin is not JSON ({err}): {SHAPE}") from None
        calls = check_calls(data)
    except contract.InputRefused as err:
        print(f"slipway-release: {err}", file=sys.stderr)
        print(json.dumps({"results": [], "error": str(err)}, sort_keys=True))
        return contract.EXIT_USAGE
    results: list[dict[str, Any]] = []
    rc = contract.EXIT_OK
    for call in calls:
        results.append(run_one(command, call["argv"], call["stdin"]))
        own = int(results[-1]["rc"])
        if own != contract.EXIT_OK:
            print(f"slipway-release: batch: {' '.join(call['argv'][:4])} exited {own}: "
                  f"{results[-1]['stderr'].strip()[-500:] or 'no output on stderr'}", file=sys.stderr)
            rc = rc or own
            if not data.get("keep_going", False):
                break
    print(json.dumps({"results": results}, sort_keys=True))
    return rc
