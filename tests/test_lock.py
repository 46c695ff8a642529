"""The lock covers pyproject.toml: every declared dependency is pinned, at a version its range allows.

The test command installs from requirements/lock.txt; a dependency added to pyproject.toml without
refreshing the lock (``bash scripts/lock --keep``) would otherwise float to whatever is newest.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def _pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (ROOT / "requirements" / "lock.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        req = Requirement(line)
        (spec,) = req.specifier
        assert spec.operator == "==", f"lock line is not a pin: {line!r}"
        if req.marker is None or req.marker.evaluate():
            pins[canonicalize_name(req.name)] = Version(spec.version)
    return pins


def _declared() -> list[Requirement]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    reqs = list(meta["project"]["dependencies"])
    for extra in meta["project"]["optional-dependencies"].values():
        reqs.extend(extra)
    reqs.extend(meta["build-system"]["requires"])
    return [Requirement(r) for r in reqs]


@pytest.mark.parametrize("req", _declared(), ids=str)
def test_every_declared_dependency_is_pinned_within_its_range(req: Requirement) -> None:
    if req.marker is not None and not req.marker.evaluate(default_environment() | {"extra": ""}):
        pytest.skip(f"not for this platform: {req.marker}")
    pins = _pins()
    name = canonicalize_name(req.name)
    assert name in pins, (
        f"{req.name} is declared in pyproject.toml but not in requirements/lock.txt: run bash scripts/lock --keep"
    )
    assert req.specifier.contains(pins[name], prereleases=True), (
        f"requirements/lock.txt pins {req.name}=={pins[name]}, outside pyproject.toml's {req.specifier}"
    )
