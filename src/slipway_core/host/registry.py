"""What a pull will take before it starts: the image's compressed size from its registry's manifest.

A deploy checks free disk before the image arrives (disk.py). An archive says its own size; a pull asks the
registry: `docker manifest inspect --verbose` (the docker CLI, so the session's login and the engine's proxy
settings apply) lists the config and layer blobs of the image for each platform, with their compressed sizes. The
host's platform is picked from a multi-platform list.

What a pull needs on Docker's data root: the compressed layers while they are downloaded, then each one unpacked.
The sample service's image is 84 MiB compressed and 218 MiB unpacked (2.6x; measured with distribution 2.8 and
Docker 20.10), so the peak is about 3.6x the compressed size; PULL_FACTOR 4 leaves room for images that compress
better. Layers already on the host are counted too (the manifest names compressed blobs, the engine keeps
uncompressed ones): the estimate errs on the safe side.

When the size cannot be read (the registry does not answer within MANIFEST_TIMEOUT, refuses the manifest API, or
a Docker Hub image comes through the engine's registry mirror, which `docker manifest` does not use), the margin
alone must be free and the refusal says why the size is not known. Standard library only, Python 3.8+.
"""

from __future__ import annotations

import ipaddress
import platform
from typing import Any, Mapping

PULL_FACTOR = 4  # a pull's peak use of the data root / the image's compressed size (measured 3.6)
MANIFEST_TIMEOUT = 20.0  # seconds for `docker manifest inspect`; then the size is not known
ARCHITECTURES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm"}


def host_architecture(machine: str = "") -> str:
    """The OCI architecture of this host (amd64, arm64, ...)."""
    found = machine or platform.machine()
    return ARCHITECTURES.get(found.lower(), found.lower())


def _address(registry: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    host = registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry
    host = host.strip("[]")
    if host == "localhost":
        return ipaddress.ip_address("127.0.0.1")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def insecure(registry: str | None, config: Mapping[str, Any]) -> bool:
    """Whether the engine reaches `registry` over plain HTTP (its RegistryConfig, from `docker info`): listed as not
    secure, or an address inside InsecureRegistryCIDRs (127.0.0.0/8 by default). `docker manifest` needs
    --insecure exactly then; never otherwise, so that credentials never go over plain HTTP by a fallback."""
    if not registry:
        return False
    index = (config.get("IndexConfigs") or {}).get(registry) or {}
    if index.get("Secure") is False:
        return True
    address = _address(registry)
    if address is None:
        return False
    for cidr in config.get("InsecureRegistryCIDRs") or []:
        try:
            if address in ipaddress.ip_network(str(cidr), strict=False):
                return True
        except ValueError:
            continue
    return False


def unreadable(registry: str | None, config: Mapping[str, Any]) -> str:
    """Why the manifest of an image from `registry` (None: Docker Hub) is not asked for, or "" when it is."""
    if registry is None and config.get("Mirrors"):
        return "Docker Hub images come through the engine's registry mirror, which docker manifest does not read"
    return ""


def manifest_argv(ref: str, registry: str | None, config: Mapping[str, Any]) -> list[str]:
    """The docker command that reads the manifest of `ref`."""
    return ["manifest", "inspect", "--verbose", *(["--insecure"] if insecure(registry, config) else []), ref]


def _image_bytes(entry: Mapping[str, Any]) -> int:
    manifest = entry.get("SchemaV2Manifest") or entry.get("OCIManifest") or {}
    blobs = [manifest.get("config") or {}, *(manifest.get("layers") or [])]
    sizes = [blob.get("size") for blob in blobs if isinstance(blob, Mapping)]
    return sum(size for size in sizes if isinstance(size, int) and not isinstance(size, bool) and size > 0)


def manifest_bytes(document: Any, architecture: str) -> int:
    """The compressed bytes of the image for linux/`architecture` in `docker manifest inspect --verbose`'s answer
    (one image: an object; a multi-platform list: a list of them, each with its Descriptor's platform); 0 when the
    answer holds no such image."""
    entries = document if isinstance(document, list) else [document]
    entries = [entry for entry in entries if isinstance(entry, Mapping)]
    if len(entries) > 1:
        entries = [entry for entry in entries
                   if ((entry.get("Descriptor") or {}).get("platform") or {}).get("os") == "linux"
                   and ((entry.get("Descriptor") or {}).get("platform") or {}).get("architecture") == architecture]
    return _image_bytes(entries[0]) if entries else 0
