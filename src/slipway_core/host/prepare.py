"""The steps before any traffic can move: get the image, back up the database, run the migration.

Each runs once per rollout, on one host (with several app hosts, the image step on each). A failure here changes
nothing that serves: no container of the new release has started.
"""

from __future__ import annotations

import os
import re
import subprocess
from typing import Any

from slipway_core import contract
from slipway_core.host import addresses, disk
from slipway_core.host.docker import ContainerSpec, Docker, DockerError
from slipway_core.host.release import mounts
from slipway_core.host.run import Failed, Run
from slipway_core.host.store import Store
from slipway_core.host.system import tail_text

# A line of `alembic current`: the revision, then what Alembic says of it.
_CURRENT_RE = re.compile(r"([0-9A-Za-z_]{1,64})(?: \((?:head|effective head|mergepoint|branchpoint)\))*")


def image(docker: Docker, store: Store, run: Run, spec: dict[str, Any]) -> None:
    """Load the archive the controller shipped (to the `upload` path begin answered), or pull the image (logged in
    with the release's registry credentials, when given)."""
    ref = spec["image_ref"]
    archive = store.paths.image_archive if os.path.exists(store.paths.image_archive) else ""
    with run.phase("image"):
        try:
            if archive:
                _load(docker, archive, spec)
            else:
                with docker.registry_login(ref, spec.get("registry_username", ""),
                                           spec.get("registry_password", "")) as session:
                    disk.check_pull(docker, spec, *docker.pull_size(ref, session))  # refused with the numbers
                    docker.pull(ref, session)
        except (DockerError, OSError) as err:
            raise Failed("image", str(err)) from err
        if docker.image_id(ref) is None:
            raise Failed("image", f"{ref} is not on the host after the {'load of ' + archive if archive else 'pull'}")


def _load(docker: Docker, archive: str, spec: dict[str, Any]) -> None:
    try:
        disk.check_image(docker, archive, spec)  # refused with the numbers before anything is written
    except Failed:
        os.unlink(archive)  # the copy would only take more of the space that is short; the next deploy ships it again
        raise
    docker.load(archive)
    os.unlink(archive)  # loaded: the copy on the host is not needed again


def backup(run: Run, spec: dict[str, Any]) -> None:
    """The postgresql role's backup entry point for the service's database, before its migration."""
    db, command = spec["backup_db"], spec.get("backup_command") or "/usr/local/sbin/slipway-pg-backup"
    with run.phase("backup"):
        try:
            proc = subprocess.run(  # noqa: S603 - the role's backup command and a database name
                [command, db],
                capture_output=True,
                text=True,
                check=False,
                timeout=float(spec.get("backup_timeout", 1800)),
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise Failed("backup", f"{command} {db} could not run: {err}") from err
        if proc.returncode != 0:
            raise Failed(
                "backup",
                f"the backup of {db} failed (exit {proc.returncode}): " + tail_text(proc.stderr + proc.stdout),
            )
        run.data["backup"] = backup_file((proc.stdout.strip().splitlines() or [""])[-1])


def backup_file(text: Any) -> str:
    """The backup's file as the run's record and history line keep it (what the backup printed last): one clean line."""
    return contract.clean_text(text, 500)


def revision(docker: Docker, spec: dict[str, Any]) -> str | None:
    """Alembic's revision of the service's database (None when unknown), read as the superuser over the socket."""
    db, pg = spec.get("backup_db"), spec.get("postgres_container")
    if not db or not pg:
        return None
    rc, out = docker.exec(
        pg, ["psql", "-X", "-qtAd", db, "-c", "SELECT version_num FROM alembic_version"], user="postgres"
    )
    return out.strip() if rc == 0 and out.strip() else None


def schema_revision(docker: Docker, service: str, spec: dict[str, Any], run_id: str) -> str | None:
    """Alembic's revision of the service's database (None when unknown): through the PostgreSQL container beside the
    release (one VM), else, with the data host elsewhere, from the release's own Alembic (`alembic current` in a
    one-off container of `spec`'s image with the owner's credentials: over the network, as the migration connects)."""
    if spec.get("postgres_container"):
        return revision(docker, spec)
    command = list(spec.get("migrate_command") or [])
    if not command or command[0] != "alembic":
        return None
    name = contract.migration_container_name(service, run_id)
    code, output, _ = migration_tool(docker, service, spec, name, ["alembic", "current"])
    return current_of(output) if code == 0 else None


def current_of(output: str) -> str | None:
    """The revision `alembic current` printed (its last line not logged by Alembic: `<rev> (head)`)."""
    for line in reversed(output.splitlines()):
        found = _CURRENT_RE.fullmatch(line.strip())
        if found:
            return found.group(1)
    return None


def container_spec(
    spec: dict[str, Any], name: str, env: dict[str, Any], detach: bool, command: list[str]
) -> ContainerSpec:
    """A container of the release: its image, network, limits and hardening (a colour, or the migration)."""
    c, res = spec.get("container") or {}, spec.get("resources") or {}
    return ContainerSpec(
        name=name,
        image=spec["image_ref"],
        network=spec["network"],
        env={str(k): str(v) for k, v in env.items()},
        detach=detach,
        command=command,
        read_only=bool(c.get("read_only", True)),
        tmpfs_size=str(c.get("tmpfs_size", "64m")),
        pids_limit=int(c.get("pids_limit") or 0),
        cpus=str(res.get("cpus") or ""),
        memory=str(res.get("memory") or ""),
        mounts=mounts(spec),
    )



def migration_tool(
    docker: Docker, service: str, spec: dict[str, Any], name: str, command: list[str]
) -> tuple[int, str, str]:
    """`command` once, in a one-off container `name` of the release's image with the owner's credentials (the
    migration, or a question to its migration tool); (exit code, its last output, docker's own error or '')."""
    docker.remove(name)
    env = {
        **spec["env"],
        **(spec.get("secret_env") or {}),
        **(spec.get("migrate_env") or {}),
        **(spec.get("migrate_secret_env") or {}),
    }
    one_off = container_spec(spec, name, env, False, command)
    one_off.labels = {"slipway.service": service, "slipway.role": "migration"}
    one_off.hosts = addresses.pinned_hosts(docker, spec["network"], list(spec.get("pin_hosts") or []))
    problem = ""  # docker's own error (e.g. a timeout): it explains more than the container's output
    try:
        code = docker.run(one_off, timeout=float(spec.get("migrate_timeout", 600))).returncode
    except DockerError as err:
        code, problem = -1, str(err)
    finally:
        output = f"{problem}\n{docker.logs(name, 40)}".strip()
        docker.remove(name)
    return code, output, problem


def migrate(docker: Docker, store: Store, run: Run, spec: dict[str, Any]) -> None:
    """The migrate command once, in a one-off container of the new image with the owner's credentials. Across hosts
    the backup before it ran on the data host, asked by the controller, which gives its file as the release's
    `backup`: the run's history line names it, as one VM's names the file its own backup step wrote."""
    run_id = run.run_id
    if spec.get("backup") and not run.data.get("backup"):
        run.data["backup"] = backup_file(spec["backup"])
    with run.phase("migrate"):
        before = revision(docker, spec)
        name = contract.migration_container_name(store.service, run_id)
        code, output, problem = migration_tool(docker, store.service, spec, name, list(spec["migrate_command"]))
        if problem:
            run.data["message"] = problem
        after = schema_revision(docker, store.service, spec, run_id)
        run.data["migration_revision"] = after
        if code != 0:
            path = store.save_log(run_id, "migrate", output)
            changed = f"unchanged (still {before})" if before == after else f"CHANGED from {before} to {after}"
            raise Failed(
                "migrate",
                f"`{' '.join(spec['migrate_command'])}` in {spec['image_ref']} failed "
                f"(exit {code}); no container was started, {spec['version']} was not deployed; schema "
                f"revision {changed}. Last lines of its output (all in {path}):\n"
                f"{tail_text(output)}",
            )
