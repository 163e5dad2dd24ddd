"""The cache of compiled templates (plugin_utils/template_cache.py): what it keys a compile on, that a warm cache
renders what a cold one and no cache do, and that Ansible's own runs share it (real ansible-playbook, localhost)."""

from __future__ import annotations

import importlib
import json
import marshal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
import pytest
from ansible._internal._templating._jinja_bits import AnsibleEnvironment, _TemplateCompileContext
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from plugin_loader import play

template_cache = importlib.import_module("ansible_collections.slipway.core.plugins.plugin_utils.template_cache")


@pytest.fixture
def compiles() -> list[str]:
    return []


@pytest.fixture
def counted(compiles: list[str]) -> Callable[..., Any]:
    """Jinja's compile, counting the sources it compiles."""

    def compile(env: jinja2.Environment, source: Any, *args: Any) -> Any:
        compiles.append(source if isinstance(source, str) else "<expression>")
        return jinja2.Environment.compile(env, source, *args)

    return compile


def env() -> AnsibleEnvironment:
    return AnsibleEnvironment()


def code_of(environment: jinja2.Environment, source: str) -> bytes:
    """What Jinja compiles `source` to in `environment`, without the cache, comparable."""
    return marshal.dumps(jinja2.Environment.compile(environment, source), 2)  # 2: no references, byte for byte


def test_a_source_is_compiled_once_for_every_process_that_reads_the_cache(
        tmp_path: Path, counted: Callable[..., Any], compiles: list[str]) -> None:
    source = "{{ items | map('int') | sum }} of {{ name }}"
    first = template_cache.cached_compile(counted, tmp_path)(env(), source)
    assert compiles == [source]
    (stored,) = (path for path in tmp_path.rglob("*") if path.is_file())  # under the key's two-letter directory
    assert stored.stat().st_mode & 0o777 == 0o600  # a template's text may hold a secret: the user's only
    # Another process (a fresh in-memory cache, the same directory): read, not compiled.
    again = template_cache.cached_compile(counted, tmp_path)(env(), source)
    assert compiles == [source]
    assert marshal.dumps(again, 2) == marshal.dumps(first, 2) == code_of(env(), source)


@pytest.mark.parametrize("other", [
    pytest.param(lambda e: e.overlay(variable_start_string="[[", variable_end_string="]]"), id="overlay delimiters"),
    pytest.param(lambda e: e.overlay(trim_blocks=False), id="trim_blocks (Ansible's is on)"),
    pytest.param(lambda e: jinja2.Environment(autoescape=True), id="another environment class"),
])
def test_other_settings_compile_the_same_source_again(
        tmp_path: Path, counted: Callable[..., Any], compiles: list[str], other: Callable[[Any], Any]) -> None:
    compile = template_cache.cached_compile(counted, tmp_path)
    source = "{% if x %}\n[[ x ]] {{ x }}\n{% endif %}"
    compile(env(), source)
    changed = other(env())
    code = compile(changed, source)
    assert compiles == [source, source]
    assert marshal.dumps(code, 2) == code_of(changed, source) != code_of(env(), source)


def test_ansibles_backslash_escaping_is_part_of_the_key(
        tmp_path: Path, counted: Callable[..., Any], compiles: list[str]) -> None:
    """Ansible escapes backslashes in an expression's strings when it compiles a template from YAML, and not when Jinja
    compiles an include: the same source compiles to different code."""
    compile = template_cache.cached_compile(counted, tmp_path)
    source = "{{ 'a\\nb' }}"
    with _TemplateCompileContext(escape_backslashes=True):
        escaped = compile(env(), source)
    plain = compile(env(), source)
    assert len(compiles) == 2
    assert marshal.dumps(plain, 2) == code_of(env(), source)
    with _TemplateCompileContext(escape_backslashes=True):
        assert marshal.dumps(escaped, 2) == code_of(env(), source) != marshal.dumps(plain, 2)


def test_a_damaged_file_is_compiled_again_and_replaced(
        tmp_path: Path, counted: Callable[..., Any], compiles: list[str]) -> None:
    source = "{{ 40 + 2 }}"
    template_cache.cached_compile(counted, tmp_path)(env(), source)
    (stored,) = (path for path in tmp_path.rglob("*") if path.is_file())
    stored.write_bytes(b"\x00not marshal")
    code = template_cache.cached_compile(counted, tmp_path)(env(), source)
    assert compiles == [source, source]
    assert marshal.dumps(code, 2) == code_of(env(), source)
    assert template_cache.read(stored) is not None


def test_the_template_debugger_and_raw_source_are_never_cached(
        tmp_path: Path, counted: Callable[..., Any], compiles: list[str]) -> None:
    compile = template_cache.cached_compile(counted, tmp_path)
    debugged = env()
    debugged._debuggable_template_source = False
    compile(env(), "{{ 1 }}", None, None, True)  # raw: Jinja's Python source, not code
    debugged._debuggable_template_source = True
    compile(debugged, "{{ 2 }}")
    compile(debugged, "{{ 2 }}")
    assert compiles == ["{{ 1 }}", "{{ 2 }}", "{{ 2 }}"]
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def patched(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, counted: Callable[..., Any]) -> Path:
    """Ansible's environment compiling through a cache under tmp_path, for this test only."""
    monkeypatch.setattr(AnsibleEnvironment, "compile", template_cache.cached_compile(counted, tmp_path))
    monkeypatch.setattr(AnsibleEnvironment, "compile_expression",
                        template_cache.expression_source(jinja2.Environment.compile_expression))
    return tmp_path


def test_conditionals_and_templates_through_ansibles_templar_are_cached(patched: Path, compiles: list[str]) -> None:
    """A `when:` is an expression (Jinja compiles its parsed tree, keyed by its text); a task argument a template."""
    for _ in range(2):
        templar = Templar(loader=DataLoader(), variables={"hosts": ["app-1", "app-2"]})
        assert templar.evaluate_conditional(trust_as_template("hosts | length > 1")) is True
        assert templar.template(trust_as_template("{{ hosts | join(',') }}")) == "app-1,app-2"
        assert templar.evaluate_conditional(trust_as_template("hosts | length > 2")) is False
    assert compiles.count("<expression>") == 2  # two expressions, each once
    assert compiles.count("{{ hosts | join(',') }}") == 1


def test_cache_root_is_per_version_and_can_be_turned_off(tmp_path: Path) -> None:
    assert template_cache.cache_root({"SLIPWAY_TEMPLATE_CACHE": "off"}) is None
    assert template_cache.cache_root({"SLIPWAY_TEMPLATE_CACHE": "OFF"}) is None
    chosen = template_cache.cache_root({"SLIPWAY_TEMPLATE_CACHE": str(tmp_path)})
    assert chosen is not None and chosen.parent == tmp_path
    assert f"jinja{jinja2.__version__}" in chosen.name and "ansible2." in chosen.name
    default = template_cache.cache_root({"XDG_CACHE_HOME": str(tmp_path / "xdg")})
    assert default is not None and default.parent == tmp_path / "xdg" / "slipway" / "templates"


def test_no_home_directory_means_no_cache_not_a_failed_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def nowhere() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", nowhere)
    assert template_cache.cache_root({}) is None


PLAY = r"""
- name: Render a template, a conditional and a templated file
  ansible.builtin.debug:
    msg: "{{ numbers | map('int') | sum }} {{ path }} {{ 'a\\nb' }} {{ lookup('ansible.builtin.template', 'tpl.j2') }}"
  vars:
    numbers: [1, 2, 3]
    path: 'C:\newfile'
  when: numbers | default([1]) | length > 0
"""


def test_a_warm_cache_renders_what_a_cold_cache_and_no_cache_render(tmp_path: Path) -> None:
    """Real ansible-playbook runs through the project's strategy: the first run fills the cache, the second writes
    nothing new, and each prints what a run without the cache prints."""
    (tmp_path / "tpl.j2").write_text('#jinja2:variable_start_string:"[[", variable_end_string:"]]"\n'
                                     "value [[ 7 * 6 ]] {{ raw }}\n", encoding="utf-8")
    cache = tmp_path / "cache"
    runs = []
    for setting in (str(cache), str(cache), "off"):
        result = play(tmp_path, PLAY, env={"SLIPWAY_TEMPLATE_CACHE": setting, "ANSIBLE_STDOUT_CALLBACK": "json"})
        assert result.returncode == 0, result.stdout + result.stderr
        (task,) = json.loads(result.stdout)["plays"][0]["tasks"]
        files = sorted(path.name for path in cache.rglob("*") if path.is_file())
        runs.append((task["hosts"]["localhost"]["msg"], files))
    (cold, cold_files), (warm, warm_files), (uncached, after_off) = runs
    assert cold == warm == uncached
    assert cold == "6 C:\\newfile a\\nb value 42 {{ raw }}\n", cold
    assert len(cold_files) >= 3, cold_files  # the message, the condition, the templated file
    assert warm_files == cold_files == after_off


def test_the_projects_strategy_installs_the_cache() -> None:
    importlib.import_module("ansible_collections.slipway.core.plugins.strategy.mitogen_linear")
    assert getattr(AnsibleEnvironment, "_slipway_template_cache", None) == template_cache.cache_root()
