"""The vendor contracts in contracts/ are the documents of ../shared/contracts, byte for byte.

The adapter tests read the vendored copies, so a clone needs nothing beside it; this test
keeps the copies from drifting from the steering folder's originals whenever that folder
is there (CI lays it beside the clone). See contracts/README.md and decision 0116.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VENDORED = ROOT / "contracts"
# Files of ours that the originals do not have: the provenance notes.
PROVENANCE = {"README.md", "chatwoot/LICENSE"}


def _shared_contracts() -> Path:
    return Path(
        os.environ.get("CONNECTOR_TEST_SHARED_CONTRACTS") or ROOT.parent / "shared" / "contracts"
    )


def _files(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def differences(vendored: Path, shared: Path) -> list[str]:
    """What differs between the vendored folder and the originals, one line per file."""
    ours, theirs = _files(vendored), _files(shared)
    problems = [
        f"{name}: in {shared} but not vendored" for name in sorted(theirs.keys() - ours.keys())
    ]
    problems += [
        f"{name}: vendored but not in {shared} (nor a provenance note)"
        for name in sorted(ours.keys() - theirs.keys() - PROVENANCE)
    ]
    problems += [
        f"{name}: the vendored copy differs from {shared / name}"
        for name in sorted(ours.keys() & theirs.keys())
        if ours[name] != theirs[name]
    ]
    return problems


def test_the_vendored_contracts_are_the_shared_ones() -> None:
    shared = _shared_contracts()
    if not shared.is_dir():
        pytest.skip(
            f"{shared} is absent: that folder is not part of the repository (a plain clone has "
            "none), so the comparison skips wherever it is missing, CI included; the adapter "
            "tests use the vendored copies in contracts/ either way"
        )
    problems = differences(VENDORED, shared)
    assert not problems, "copy the changed files from shared/contracts:\n" + "\n".join(problems)


def test_the_comparison_sees_a_changed_missing_or_stray_file(tmp_path: Path) -> None:
    shared, vendored = tmp_path / "shared", tmp_path / "vendored"
    for folder in (shared, vendored):
        (folder / "salesforce").mkdir(parents=True)
        (folder / "salesforce" / "same.json").write_bytes(b"{}\n")
    (shared / "salesforce" / "changed.json").write_bytes(b'{"a": 1}\n')
    (vendored / "salesforce" / "changed.json").write_bytes(b'{"a": 1}\r\n')
    (shared / "salesforce" / "missing.json").write_bytes(b"{}")
    (vendored / "salesforce" / "stray.json").write_bytes(b"{}")
    (vendored / "README.md").write_text("provenance")
    assert differences(vendored, shared) == [
        f"salesforce/missing.json: in {shared} but not vendored",
        f"salesforce/stray.json: vendored but not in {shared} (nor a provenance note)",
        f"salesforce/changed.json: the vendored copy differs from {shared}/salesforce/changed.json",
    ]


def test_each_vendored_contract_carries_its_licence_and_provenance() -> None:
    note = (VENDORED / "README.md").read_text()
    for source, licence in [
        ("f6510e0d4367f5a7a9e9a142032483063be34358", "MIT"),
        ("83bd942db3449f52a71777c2ac09bc0294466cb2", "CC0 1.0"),
    ]:
        assert source in note
        assert licence in note
    assert "MIT" in (VENDORED / "chatwoot" / "LICENSE").read_text()
    assert (VENDORED / "salesforce" / "postman" / "LICENSE").read_text().startswith("CC0 1.0")
    assert (VENDORED / "chatwoot" / "application_swagger.json").is_file()
    assert len(list((VENDORED / "salesforce" / "postman").glob("*/*.json"))) > 80
