"""Every entry point refuses the same bad input with the contract's message, before any host task.

The cases (bad_input_cases.CASES: the CLI's fuzz values, shell metacharacters, unicode, 10 kB strings, '-'
prefixes, blanks and line breaks Ansible's key=value parser would drop, a number given as JSON) go through
`slipway` and through `ansible-playbook` with `-e key=value` and with `-e '{json}'`; real processes, no fakes, about
40 ansible-playbook runs, a few at a time. `bad_input_table.py` (beside it) prints the same runs as a Markdown
table.
"""

from __future__ import annotations

import pytest
from bad_input_cases import CASES, PREFLIGHT_TASK, Outcome, Row, expected_for, markdown, rows, run_all

ROWS = rows()


@pytest.fixture(scope="module")
def outcomes() -> dict[str, Outcome]:
    done = run_all(ROWS)
    print("\n" + markdown(ROWS, done))  # shown with -s or on a failure
    return done


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_refused_with_the_contracts_message(row: Row, outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes[row.id]
    assert outcome.message == expected_for(row), outcome
    if row.entry.startswith("slipway"):
        assert outcome.exit == 2
        return
    assert outcome.exit != 0
    # The refusal came from preflight, on the controller: its task is the only failure and no inventory host ran.
    assert outcome.failed == ((PREFLIGHT_TASK, "localhost"),)
    assert outcome.recap_hosts == ("localhost",)


def test_every_entry_point_and_form_says_the_same() -> None:
    """Where a value reaches the same rule, the message is the same text from the CLI, key=value and JSON."""
    for case in CASES:
        for command in case.commands:
            messages = {expected_for(row) for row in rows([case]) if row.entry in (f"slipway {command}",
                                                                                   f"{command}.yml")}
            assert len(messages) == 1, (case, messages)


def test_the_table_covers_each_entry_point_and_form() -> None:
    forms = {(row.entry, row.form) for row in ROWS}
    for entry, form in [("slipway deploy", "--option=value"), ("deploy.yml", "key=value"), ("deploy.yml", "JSON"),
                        ("rollback.yml", "key=value"), ("status.yml", "key=value")]:
        assert (entry, form) in forms
    assert 25 <= sum(1 for row in ROWS if row.entry.endswith(".yml")) <= 45  # about a second each
