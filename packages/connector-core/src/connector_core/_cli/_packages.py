"""``connector list``: which connector packages are installed, and which are known."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points

from connector_core._registry import ENTRY_POINT_GROUP, KNOWN_PACKAGES


@dataclass(frozen=True, slots=True)
class ConnectorPackage:
    name: str
    version: str | None
    """None when the package is not installed."""
    schemes: tuple[str, ...]

    @property
    def installed(self) -> bool:
        return self.version is not None

    @property
    def install(self) -> str:
        return f"pip install {self.name}"


def connector_packages() -> list[ConnectorPackage]:
    """Installed connector packages (from the entry-point group, with the distribution's
    version and its schemes), then the known ones that are not installed."""
    installed: dict[str, tuple[str, set[str]]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist
        name = dist.name if dist is not None else ep.value.partition(":")[0]
        version = dist.version if dist is not None else "unknown"
        installed.setdefault(name, (version, set()))[1].add(ep.name.lower())
    known: dict[str, set[str]] = {}
    for scheme, package in KNOWN_PACKAGES.items():
        known.setdefault(package, set()).add(scheme)
    found = [
        ConnectorPackage(name, version, tuple(sorted(schemes)))
        for name, (version, schemes) in sorted(installed.items())
    ]
    names = {_normal(p.name) for p in found}
    missing = [
        ConnectorPackage(name, None, tuple(sorted(schemes)))
        for name, schemes in sorted(known.items())
        if _normal(name) not in names
    ]
    return found + missing


def _normal(name: str) -> str:
    return name.lower().replace("_", "-")
