"""A cache of Ansible's compiled Jinja templates, shared by the processes of a run and by later runs (docs/testing.md,
"Compiled templates").

Ansible compiles every template and expression it renders (Jinja's parse, its Python code generation, Python's
`compile`) and keeps nothing: each task's worker process is forked from the controller and ends with the task, so the
same role default or `when:` is compiled again for each task and host that reads it. Measured on an idle 2-core
machine, `infra.yml` on a provisioned demo host: 1,937 compiles of 526 distinct sources in 151 processes, 2.4 s of the
run's 16 s of controller CPU.

Jinja's own answer for templates read from files is its bytecode cache (marshal'd code objects, keyed by the source);
Ansible renders strings, which Jinja does not cache. This applies the same idea to Ansible's environment: the code
object of each source is written once under `cache_root()` (one directory per Python, Jinja and ansible-core
version) and read back by every later compile of the same source under the same settings. What a compile depends on
besides the source is in the key: the environment's class and its lexer and code-generator settings (an overlay's
`#jinja2:` overrides), Ansible's backslash escaping and embedded-template setting, the name, file name and deferred
init. A template compiled for Ansible's template debugger is never cached.

`SLIPWAY_TEMPLATE_CACHE` names another directory, or `off` turns the cache off. The strategy plugin installs it
(`install()`); under Ansible's own strategy nothing changes.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import importlib.util
import marshal
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import CodeType
from typing import Any

import jinja2
from ansible._internal._templating import _jinja_bits, _jinja_common  # ansible-core's (pinned in pyproject.toml)
from ansible._internal._templating._jinja_bits import AnsibleEnvironment
from ansible.release import __version__ as ANSIBLE_VERSION

ENV_VAR = "SLIPWAY_TEMPLATE_CACHE"
# The environment settings that change what a source compiles to (Jinja's lexer and code generator read them).
SETTINGS = (
    "block_start_string", "block_end_string", "variable_start_string", "variable_end_string", "comment_start_string",
    "comment_end_string", "line_statement_prefix", "line_comment_prefix", "trim_blocks", "lstrip_blocks",
    "newline_sequence", "keep_trailing_newline", "optimized", "is_async", "sandboxed", "autoescape", "finalize",
)
# The source of the expression being compiled (Jinja compiles an expression from its parsed tree, not its text).
_EXPRESSION: contextvars.ContextVar[str | None] = contextvars.ContextVar("slipway_template_expression", default=None)


def cache_root(environ: dict[str, str] | None = None) -> Path | None:
    """The directory of this Python's, Jinja's and ansible-core's compiled templates; None when the cache is off."""
    env = os.environ if environ is None else environ
    chosen = env.get(ENV_VAR, "")
    if chosen.lower() == "off":
        return None
    if chosen:
        base = Path(chosen)
    else:
        try:
            base = Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "slipway/templates"
        except (RuntimeError, KeyError):  # no HOME and no home directory for this user: no cache, nothing else lost
            return None
    versions = f"py{sys.version_info[0]}.{sys.version_info[1]}-{importlib.util.MAGIC_NUMBER.hex()}"
    return base / f"{versions}-jinja{jinja2.__version__}-ansible{ANSIBLE_VERSION}"


def _setting(value: Any) -> str:
    """A setting as the key holds it: a function by its qualified name (Ansible's finalize), anything else by repr."""
    if callable(value):
        return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', type(value).__qualname__)}"
    return repr(value)


def settings_of(env: jinja2.Environment) -> tuple[str, ...]:
    """What besides the source decides the code a compile in `env` makes."""
    context = _jinja_bits._TemplateCompileContext.current(optional=True)
    return (
        f"{type(env).__module__}.{type(env).__qualname__}",
        *(f"{name}={_setting(getattr(env, name, None))}" for name in SETTINGS),
        f"extensions={sorted(env.extensions)}",
        f"escape_backslashes={bool(context and context.escape_backslashes)}",
        f"allow_embedded_templates={_jinja_common._TemplateConfig.allow_embedded_templates}",
    )


def cache_key(kind: str, text: str, settings: tuple[str, ...], *, name: str | None, filename: str | None,
              defer_init: bool) -> str:
    """The file name of one compiled source: a SHA-256 over everything the compile depends on."""
    digest = hashlib.sha256()
    for part in (kind, repr(name), repr(filename), repr(defer_init), *settings):
        digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
    digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def read(path: Path) -> CodeType | None:
    """The code object stored at `path`; None when there is none or it cannot be read (it is then compiled again)."""
    try:
        # Files only this user can read or write (0600, write()), as Jinja's bytecode cache reads the user's own.
        code = marshal.loads(path.read_bytes())  # noqa: S302
    except (OSError, ValueError, EOFError, TypeError):
        return None
    return code if isinstance(code, CodeType) else None


def write(path: Path, code: CodeType) -> None:
    """Store `code` at `path` for the other processes, atomically (a reader sees all of it or nothing); a cache that
    cannot be written is only not written."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(marshal.dumps(code))
            os.replace(temp, path)
        except BaseException:
            os.unlink(temp)
            raise
    except OSError:
        return


def cached_compile(original: Callable[..., Any], root: Path) -> Callable[..., Any]:
    """`Environment.compile` through the cache under `root` (and a dict for this process)."""
    memory: dict[str, CodeType] = {}

    @functools.wraps(original)
    def compile(  # noqa: PLR0917 (Jinja's signature, which Jinja calls positionally)
        self: jinja2.Environment, source: Any, name: str | None = None, filename: str | None = None, raw: bool = False,
        defer_init: bool = False,
    ) -> Any:
        text = source if isinstance(source, str) else _EXPRESSION.get()
        if raw or text is None or getattr(self, "_debuggable_template_source", False):
            return original(self, source, name, filename, raw, defer_init)
        kind = "template" if isinstance(source, str) else "expression"
        key = cache_key(kind, text, settings_of(self), name=name, filename=filename, defer_init=defer_init)
        code = memory.get(key)
        if code is None:
            path = root / key[:2] / key
            code = read(path)
            if code is None:
                code = original(self, source, name, filename, raw, defer_init)
                write(path, code)
            memory[key] = code
        return code

    return compile


def expression_source(original: Callable[..., Any]) -> Callable[..., Any]:
    """`Environment.compile_expression`, telling the compile inside it which expression it compiles."""

    @functools.wraps(original)
    def compile_expression(self: jinja2.Environment, source: str, *args: Any, **kwargs: Any) -> Any:
        token = _EXPRESSION.set(source if isinstance(source, str) else None)
        try:
            return original(self, source, *args, **kwargs)
        finally:
            _EXPRESSION.reset(token)

    return compile_expression


def install(environ: dict[str, str] | None = None) -> Path | None:
    """Have Ansible's Jinja environment compile through the cache (once per process); its directory, or None when the
    cache is off."""
    root = cache_root(environ)
    if root is None or getattr(AnsibleEnvironment, "_slipway_template_cache", None) is not None:
        return root
    AnsibleEnvironment.compile = cached_compile(jinja2.Environment.compile, root)
    AnsibleEnvironment.compile_expression = expression_source(
        AnsibleEnvironment.compile_expression)
    AnsibleEnvironment._slipway_template_cache = root
    return root
