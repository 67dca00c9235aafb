"""Reproduce a published run: rerun the recorded pipeline and compare the output's bytes.

The recorded input (checked against its sha256), config and seed are run again, in full and
without reusing any stage, into a temporary folder; on the same platform and CPU the output
is byte-identical.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fairdistill.flows.config import build_config
from fairdistill.flows.regenerate import regenerate_fair_dataset
from fairdistill.tasks.services.audit import VerificationError, file_digest, load_manifest


@dataclass(frozen=True)
class Reproduction:
    identical: bool
    recorded_sha256: str
    reproduced_sha256: str
    reproduced_folder: str


def recorded_config(manifest: dict[str, Any], output: Path) -> dict[str, Any]:
    """The recorded config, rerun in full into ``output`` under a fresh run name."""
    config = dict(manifest["config"])
    config.update(
        data=manifest["input"]["path"],
        spec=manifest["input"]["spec_path"],
        output=str(output),
        run_name=None,
        overwrite=False,
        reuse_stages=False,
        register_model=False,
    )
    return config


def check_recorded_input(manifest: dict[str, Any]) -> None:
    data = Path(manifest["input"]["path"])
    if not data.is_file():
        raise VerificationError(
            "The recorded input file is gone",
            file=str(data),
            rule="reproduce-input",
            hint="restore the input file at its recorded path to reproduce the run",
        )
    actual = file_digest(data)
    if actual != manifest["input"]["sha256"]:
        raise VerificationError(
            f"The recorded input changed since the run (sha256 {actual[:12]}…, recorded "
            f"{manifest['input']['sha256'][:12]}…)",
            file=str(data),
            rule="reproduce-input",
            hint="reproduction needs the exact input the run read",
        )


def reproduce(manifest_path: str | Path, *, output: str | Path | None = None) -> Reproduction:
    """Rerun the recorded pipeline and compare the output's bytes with the published ones."""
    path = Path(manifest_path).resolve()
    manifest = load_manifest(path)
    check_recorded_input(manifest)
    target = Path(output) if output else Path(tempfile.mkdtemp(prefix="fairdistill-reproduce-"))
    config = build_config(recorded_config(manifest, target), source=str(path))
    summary = regenerate_fair_dataset(config)
    recorded = manifest["output"]["sha256"]
    return Reproduction(
        identical=summary.published.sha256 == recorded,
        recorded_sha256=recorded,
        reproduced_sha256=summary.published.sha256,
        reproduced_folder=summary.published.folder,
    )
