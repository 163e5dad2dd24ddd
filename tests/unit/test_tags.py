"""Release tag arithmetic: staging bumps the patch, production promotes a staging tag to the next minor."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from slipway import tags
from slipway.exitcodes import InputError


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        ([], "v0.0.1"),
        (["v1.4.0"], "v1.4.1"),
        (["v1.4.0", "v1.4.1", "v1.4.2"], "v1.4.3"),
        (["v1.4.9", "v1.4.10"], "v1.4.11"),  # numeric, not lexical, order
        (["v1.4.3", "v1.5.0"], "v1.5.1"),  # after a production release
        (["v2.0.0", "v1.9.3", "release-x", "v3", "v1.2.3-rc1"], "v2.0.1"),  # other tags ignored
    ],
)
def test_next_staging(existing: list[str], expected: str) -> None:
    assert tags.next_staging(existing) == expected


def test_next_production_promotes_to_the_next_minor() -> None:
    assert tags.next_production(["v1.4.0", "v1.4.1", "v1.4.2"], "v1.4.2") == "v1.5.0"
    assert (
        tags.next_production(["v1.4.0", "v1.4.1", "v1.4.2"], "v1.4.1") == "v1.5.0"
    )  # an older build of the line
    assert tags.next_production(["v0.0.1"], "v0.0.1") == "v0.1.0"


@pytest.mark.parametrize(
    ("existing", "tag", "why"),
    [
        (["v1.4.0", "v1.4.1"], "v1.4.0", "production tag"),
        (["v1.4.1"], "v1.4.2", "no such tag"),
        (["v1.4.1", "v1.5.0"], "v1.4.1", "already promoted as v1.5.0"),
        (["v1.4.1", "v1.6.0", "v1.6.1"], "v1.4.1", "superseded by v1.6.1"),
        (["v1.4.1"], "1.4.1", "not a release tag"),
        (["v1.4.1"], "v1.4.1; rm -rf /", "not a release tag"),
        (["v1.4.1"], "x" * 10_000, "not a release tag"),
    ],
)
def test_next_production_refuses_anything_else(existing: list[str], tag: str, why: str) -> None:
    with pytest.raises(InputError, match=why) as info:
        tags.next_production(existing, tag)
    assert len(str(info.value)) < 300


def test_tags_are_read_with_git(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    git("-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "x")
    git("tag", "v1.0.1")
    git("tag", "other")
    assert tags.git_tags(tmp_path) == ["v1.0.1"]
    assert tags.next_staging(tags.git_tags(tmp_path)) == "v1.0.2"


def test_git_failure_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read the tags"):
        tags.git_tags(tmp_path / "missing")
