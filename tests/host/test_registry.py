"""registry.py: an image's compressed size from `docker manifest inspect --verbose`'s answer (one image, or a
multi-platform list), and when the manifest is read over plain HTTP (only where the engine itself would)."""

from __future__ import annotations

from typing import Any

import pytest

from slipway_core.host import registry


def image(*sizes: int, config: int = 1000, kind: str = "SchemaV2Manifest") -> dict[str, Any]:
    return {kind: {"config": {"size": config}, "layers": [{"size": size} for size in sizes]}}


def listed(architecture: str, *sizes: int) -> dict[str, Any]:
    return {"Descriptor": {"platform": {"os": "linux", "architecture": architecture}}, **image(*sizes)}


def test_one_image_is_its_config_and_layers() -> None:
    assert registry.manifest_bytes(image(10, 20), "amd64") == 1030
    assert registry.manifest_bytes(image(10, 20, kind="OCIManifest"), "arm64") == 1030


def test_a_multi_platform_list_gives_this_host_s_image() -> None:
    answer = [listed("arm64", 5), listed("amd64", 7, 8), {"Descriptor": {"platform": {"os": "windows"}}}]
    assert registry.manifest_bytes(answer, "amd64") == 1015
    assert registry.manifest_bytes(answer, "arm64") == 1005
    assert registry.manifest_bytes(answer, "s390x") == 0


@pytest.mark.parametrize("answer", [{}, [], "text", {"SchemaV2Manifest": {"layers": [{"size": "12"}, {"size": True},
                                                                                      {"size": -4}, "x"]}}])
def test_an_answer_without_sizes_is_zero(answer: Any) -> None:
    assert registry.manifest_bytes(answer, "amd64") == 0


def test_the_host_architecture_in_oci_terms() -> None:
    assert registry.host_architecture("x86_64") == "amd64"
    assert registry.host_architecture("aarch64") == "arm64"
    assert registry.host_architecture("riscv64") == "riscv64"


CONFIG = {"InsecureRegistryCIDRs": ["127.0.0.0/8", "not a cidr"],
          "IndexConfigs": {"docker.io": {"Secure": True}, "registry.lan:5000": {"Secure": False}}}


@pytest.mark.parametrize(("where", "plain"), [
    (None, False), ("registry.example.test", False), ("127.0.0.1:5000", True), ("localhost:5000", True),
    ("10.0.0.5:5000", False), ("registry.lan:5000", True), ("[::1]:5000", False), ("127.0.0.1", True),
])
def test_insecure_only_where_the_engine_reaches_the_registry_over_plain_http(where: str | None, plain: bool) -> None:
    assert registry.insecure(where, CONFIG) is plain
    argv = registry.manifest_argv("r/x:1", where, CONFIG)
    assert ("--insecure" in argv) is plain and argv[-1] == "r/x:1"


def test_docker_hub_behind_a_mirror_is_not_read() -> None:
    assert "registry mirror" in registry.unreadable(None, {"Mirrors": ["https://m.example.test/"]})
    assert registry.unreadable("registry.example.test", {"Mirrors": ["https://m.example.test/"]}) == ""
    assert registry.unreadable(None, {}) == ""
