"""The `--json` output's version and the document an argparse error prints (docs/cli-json.md).

Every `--json` output of a command that runs (and of a refusal before it runs) is report.Report.as_dict(); an
argument the parser refuses prints usage_error() with the same keys, so a caller always reads one shape. The
schema (docs/cli-json.schema.json) gets a new SCHEMA_VERSION when a key is removed, renamed or changes type;
new keys keep it.
"""

from __future__ import annotations

from typing import Any

from slipway.exitcodes import ExitCode

SCHEMA_VERSION = 1


def usage_error(message: str, command: str | None) -> dict[str, Any]:
    """The JSON of a command line argparse refused (exit 2): nothing ran, so no env, run id or results."""
    return {
        "schema_version": SCHEMA_VERSION,
        "command": command,
        "env": None,
        "run_id": None,
        "exit_code": int(ExitCode.BAD_INPUT),
        "outcome": "bad-input",
        "reason": message,
        "duration": 0.0,
        "results": [],
        "records": [],
        "phases": [],
        "errors": [message],
        "run_url": None,
    }
