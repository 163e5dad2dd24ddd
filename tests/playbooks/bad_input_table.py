"""Print, as a Markdown table, how every entry point answers the bad-input cases of tests/playbooks/test_bad_input.py.

    .venv/bin/python tests/playbooks/bad_input_table.py

Runs the same cases the same way (tests/playbooks/bad_input_cases.py: `slipway`, and `ansible-playbook` with
-e key=value and with JSON; nothing reaches a host) and prints value, entry point, form, exit code and message.
Exits 1 when a run did not give the contract's message.
"""

from __future__ import annotations

import sys

from bad_input_cases import expected_for, markdown, rows, run_all


def main() -> int:
    all_rows = rows()
    outcomes = run_all(all_rows)
    print(markdown(all_rows, outcomes))
    wrong = [row.id for row in all_rows if outcomes[row.id].message != expected_for(row)]
    for row_id in wrong:
        print(f"not the contract's message: {row_id}", file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
