"""What the manifest records about the code and environment that produced a run."""

from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path

from fairdistill.tasks.services.provenance import (
    RECORDED_PACKAGES,
    code_version,
    lock_digest,
    package_versions,
)

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_every_recorded_package_has_its_installed_version() -> None:
    versions = package_versions()
    assert set(versions) == set(RECORDED_PACKAGES)
    assert versions["torch"] == metadata.version("torch")
    assert versions["fairdistill"] == metadata.version("fairdistill")


def test_the_code_version_names_the_package_and_the_checkout() -> None:
    version = code_version()
    assert version["package"] == metadata.version("fairdistill")
    if (REPO_ROOT / ".git").exists():
        assert isinstance(version["git_commit"], str) and len(version["git_commit"]) == 40
        assert isinstance(version["git_dirty"], bool)


def test_the_lock_digest_is_the_constraints_files_sha256() -> None:
    expected = hashlib.sha256((REPO_ROOT / "constraints.txt").read_bytes()).hexdigest()
    assert lock_digest() == expected
