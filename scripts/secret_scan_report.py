"""Fail when a `detect-secrets scan` JSON report has findings; print file and line (never the secret).

Usage: detect-secrets scan > report.json && python scripts/secret_scan_report.py report.json
A deliberate test value is marked on its line with `# pragma: allowlist secret`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    report = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    findings = [
        (path, item["line_number"], item["type"]) for path, items in report["results"].items() for item in items
    ]
    for path, line, kind in sorted(findings):
        print(f"{path}:{line}: {kind}")
    print(f"detect-secrets: {len(findings)} finding(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
