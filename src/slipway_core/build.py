"""Build the host program: one zipapp from this package (contract + host), the same bytes for the same sources.

The build id is the SHA-256 of the sources (path and content of every module) and of the form a host installs them
in (INSTALLED_FORM; the host compiles them for its own Python, see host_command's install_command), written into the
zipapp as slipway_core/_build.py; the controller passes it with `--expect-build`, and a host whose program is another
build answers exit 4, so the controller installs this one (collection action slipway.core.host_command). Members
have a fixed timestamp and order, so a build is reproducible and its bytes hash the same on every controller.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
INTERPRETER = "/usr/bin/python3"
EPOCH = (1980, 1, 1, 0, 0, 0)
# The modules beside the host package that it imports (topology.py and this builder run only on the controller).
SHARED = ("cluster.py", "contract.py", "job_rules.py", "operator_commands.py", "release_rules.py", "worker_rules.py")


def sources(package: Path = PACKAGE) -> list[tuple[str, bytes]]:
    """(archive name, content) of every module the host program needs, sorted; nothing that runs only on the
    controller (this builder)."""
    files = [package / "__init__.py", *(package / name for name in SHARED), *sorted((package / "host").glob("*.py"))]
    return [(f"slipway_core/{path.relative_to(package).as_posix()}", path.read_bytes()) for path in files]


# How a host installs the zipapp (slipway.core.host_command's install_command), part of every build id: when it
# changes, every host installs the same sources again. 2: the modules compiled by the host's Python (2026-12-05).
INSTALLED_FORM = b"2"


def build_id(package: Path = PACKAGE) -> str:
    digest = hashlib.sha256(INSTALLED_FORM + b"\0")
    for name, content in sources(package):
        digest.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
    return digest.hexdigest()


def members(package: Path = PACKAGE, ident: str = "") -> list[tuple[str, bytes]]:
    """(archive name, content) of every member of the zipapp: the sources, the build id (`ident`, computed when not
    given), the entry point."""
    return [
        *sources(package),
        ("slipway_core/_build.py", f'BUILD_ID = "{ident or build_id(package)}"\n'.encode()),
        ("__main__.py", b"from slipway_core.host.main import main\nraise SystemExit(main())\n"),
    ]


def build(package: Path = PACKAGE) -> tuple[bytes, str]:
    """(the zipapp's bytes, its build id)."""
    ident = build_id(package)
    buffer = io.BytesIO()
    buffer.write(f"#!{INTERPRETER}\n".encode())
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in sorted(members(package, ident)):
            info = zipfile.ZipInfo(name, date_time=EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return buffer.getvalue(), ident


def main() -> None:
    """`python -m slipway_core.build OUT`: write the zipapp to OUT (executable) and print its build id."""
    import sys  # noqa: PLC0415

    data, ident = build()
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "slipway-host.pyz")
    out.write_bytes(data)
    out.chmod(0o755)
    print(ident)


if __name__ == "__main__":
    main()
