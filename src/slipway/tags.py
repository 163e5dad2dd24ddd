"""Release tags of the operations repository.

A tag vMAJOR.MINOR.PATCH marks a commit of this repository (the desired state of every environment).
- Staging tags have PATCH >= 1: every push to main deploys staging and bumps the patch of the latest tag
  (v1.4.0 -> v1.4.1 -> v1.4.2 ...; no tag yet -> v0.0.1).
- Production tags have PATCH == 0: a production release promotes an existing staging tag vX.Y.Z to vX.(Y+1).0
  on the same commit. Anything else is refused: a tag that is not a staging tag, that does not exist, or whose
  line was already promoted or superseded by a newer release.
Tags that are not vMAJOR.MINOR.PATCH are ignored.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable
from pathlib import Path

from slipway.exitcodes import InputError

TAG_RE = re.compile(r"^v(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})$")

Version = tuple[int, int, int]


def parse(tag: str) -> Version | None:
    match = TAG_RE.fullmatch(tag)
    if not match:
        return None
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def fmt(version: Version) -> str:
    return "v{}.{}.{}".format(*version)


def _versions(tags: Iterable[str]) -> list[Version]:
    return sorted({v for v in (parse(t) for t in tags) if v is not None})


def next_staging(tags: Iterable[str]) -> str:
    """The next staging tag: the patch of the latest release tag plus one."""
    versions = _versions(tags)
    major, minor, patch = versions[-1] if versions else (0, 0, 0)
    return fmt((major, minor, patch + 1))


def next_production(tags: Iterable[str], staging_tag: str) -> str:
    """The production tag for `staging_tag`: its next minor, or an InputError saying why not."""
    tag_list = list(tags)
    versions = _versions(tag_list)
    shown = staging_tag if len(staging_tag) <= 40 else staging_tag[:40] + "..."
    version = parse(staging_tag)
    if version is None:
        raise InputError(f"--tag {shown!r}: not a release tag; use a staging tag such as v1.4.2")
    if version[2] == 0:
        raise InputError(
            f"--tag {staging_tag}: a production tag (patch 0) cannot be promoted; pick a staging tag "
            "vX.Y.Z with Z >= 1"
        )
    if version not in versions:
        raise InputError(f"--tag {staging_tag}: no such tag in this repository; pick an existing staging tag")
    target = (version[0], version[1] + 1, 0)
    newer = [v for v in versions if v >= target]
    if target in versions:
        raise InputError(f"--tag {staging_tag}: already promoted as {fmt(target)}")
    if newer:
        raise InputError(
            f"--tag {staging_tag}: superseded by {fmt(newer[-1])}; promote a staging tag of the latest line"
        )
    return fmt(target)


def git_tags(project: Path) -> list[str]:
    """The release tags of the repository at `project` (`git tag --list 'v*'`)."""
    try:
        done = subprocess.run(  # noqa: S603 - fixed arguments
            ["git", "-C", str(project), "tag", "--list", "v*"],  # noqa: S607 - git from PATH, fixed arguments
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise InputError(
            f"cannot read the tags of {project} with git ({exc.__class__.__name__}); pass --tags"
        ) from exc
    return done.stdout.split()
