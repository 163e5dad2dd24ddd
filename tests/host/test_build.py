"""build.py: the zipapp is reproducible, holds the host program, and runs as either command."""

from __future__ import annotations

import ast
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from slipway_core import build


@pytest.fixture(scope="module")
def zipapp(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    data, ident = build.build()
    path = tmp_path_factory.mktemp("zipapp") / "slipway-host.pyz"
    path.write_bytes(data)
    return path, ident


def test_the_build_is_reproducible() -> None:
    first, first_id = build.build()
    second, second_id = build.build()

    assert first == second
    assert first_id == second_id == build.build_id()
    assert len(first_id) == 64


def test_the_zipapp_holds_the_host_program(zipapp: tuple[Path, str]) -> None:
    path, ident = zipapp
    data = path.read_bytes()
    assert data.startswith(b"#!/usr/bin/python3\n")

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        assert names == sorted(names)
        infos = archive.infolist()
        build_py = archive.read("slipway_core/_build.py").decode()

    modules = {f"slipway_core/host/{p.name}" for p in (build.PACKAGE / "host").glob("*.py")}
    assert modules | {"slipway_core/__init__.py", "slipway_core/contract.py", "__main__.py"} <= set(names)
    assert "slipway_core/build.py" not in names  # the builder stays on the controller
    assert {info.date_time for info in infos} == {build.EPOCH}
    assert build_py == f'BUILD_ID = "{ident}"\n'


def test_the_build_id_follows_the_sources(tmp_path: Path) -> None:
    package = tmp_path / "slipway_core"
    (package / "host").mkdir(parents=True)
    for name in ("__init__.py", *build.SHARED, "topology.py", "host/__init__.py", "host/main.py"):
        (package / name).write_text(f"# {name}\n")
    before = build.build_id(package)

    (package / "host" / "main.py").write_text("# changed\n")

    assert build.build_id(package) != before
    assert [name for name, _ in build.sources(package)] == [
        "slipway_core/__init__.py", "slipway_core/cluster.py", "slipway_core/contract.py",
        "slipway_core/job_rules.py", "slipway_core/operator_commands.py", "slipway_core/release_rules.py",
        "slipway_core/worker_rules.py",
        "slipway_core/host/__init__.py", "slipway_core/host/main.py"]


def imported_modules(path: Path) -> set[str]:
    """The slipway_core modules a source file imports (absolute or relative), as archive names."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = "slipway_core" if node.level else (node.module or "")
            if node.level and node.module:
                base = f"slipway_core.{node.module}"
            if base in {"slipway_core", "slipway_core.host"}:
                found |= {f"{base}.{alias.name}" for alias in node.names}
            elif base.startswith("slipway_core."):
                found.add(base)
    return {name.replace(".", "/") + ".py" for name in found}


def test_every_module_the_host_program_imports_is_in_the_zipapp(zipapp: tuple[Path, str]) -> None:
    with zipfile.ZipFile(zipapp[0]) as archive:
        names = set(archive.namelist())
    shipped = [build.PACKAGE / name.removeprefix("slipway_core/") for name in names
               if name.startswith("slipway_core/") and name != "slipway_core/_build.py"]

    needed = set().union(*(imported_modules(path) for path in shipped))

    assert "slipway_core/host/main.py" in needed  # the scan sees the host package's own imports
    assert "slipway_core/operator_commands.py" in needed
    assert needed <= names, f"imported by the host program but not shipped: {sorted(needed - names)}"
    assert "slipway_core/topology.py" not in names  # controller-only


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "COV_CORE_SOURCE")}
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=60, check=False,
                          env=env, cwd="/")


def test_the_zipapp_prints_its_build_id(zipapp: tuple[Path, str]) -> None:
    path, ident = zipapp

    done = run(str(path), "build")

    assert (done.returncode, done.stdout.strip()) == (0, ident)
    assert run(str(path), "--expect-build", ident, "build").returncode == 0
    outdated = run(str(path), "--expect-build", "f" * 64, "status")
    assert outdated.returncode == 4
    assert f"this build ({ident[:12]}) is not the controller's (ffffffffffff)" in outdated.stderr


def test_the_zipapp_dispatches_by_name(zipapp: tuple[Path, str], tmp_path: Path) -> None:
    path, _ = zipapp
    proxy = tmp_path / "slipway-proxy"
    proxy.symlink_to(path)
    missing = str(tmp_path / "none.json")

    by_name = run(str(proxy), "--settings", missing, "status")
    by_argument = run(str(path), "proxy", "--settings", missing, "status")
    release = run(str(path), "--root", str(tmp_path / "state"), "status")

    for done in (by_name, by_argument):
        assert done.returncode == 3
        assert done.stderr.startswith(f"slipway-proxy: cannot read {missing}")
    assert (release.returncode, json.loads(release.stdout)) == (0, {"status": []})


def test_main_writes_the_zipapp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "slipway-host.pyz"
    monkeypatch.setattr("sys.argv", ["build.py", str(out)])

    build.main()

    assert out.read_bytes() == build.build()[0]
    assert os.stat(out).st_mode & 0o777 == 0o755
    assert capsys.readouterr().out.strip() == build.build_id()
