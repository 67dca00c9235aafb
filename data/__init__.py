"""Real datasets shipped with fairdistill, each with its spec and provenance.

Each bundled dataset is a folder holding ``<name>.parquet``, ``spec.yaml`` and ``README.md``
(source, licence, cleaning, sha256), and may hold ``run.yaml``: run settings recommended for
it, which fill what a run's config leaves unset. ``data/build_datasets.py`` rebuilds the
tables from the raw UCI files, ``data/build_coloured_digits.py`` the coloured-digits images
from scikit-learn's bundled digits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

BUNDLED_DATASETS: tuple[str, ...] = ("adult", "german", "coloured-digits")

RUN_DEFAULTS_FILE = "run.yaml"

_DATA_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class BundledDataset:
    name: str
    data_path: Path
    spec_path: Path


def bundled_dataset(name: str) -> BundledDataset:
    """The files of one bundled dataset, by name (``adult``, ``german``, ``coloured-digits``)."""
    # Names from users are checked where they enter (fairdistill.models.config.resolve_input),
    # with an error written for them; here an unknown name is a programming error.
    if name not in BUNDLED_DATASETS:
        raise KeyError(f"no bundled dataset '{name}' (available: {', '.join(BUNDLED_DATASETS)})")
    folder = _DATA_DIR / name
    return BundledDataset(
        name=name, data_path=folder / f"{name}.parquet", spec_path=folder / "spec.yaml"
    )


def bundled_run_defaults(name: str | None) -> dict[str, Any]:
    """The run settings a bundled dataset recommends (its ``run.yaml``); empty if none."""
    if name not in BUNDLED_DATASETS:
        return {}
    path = _DATA_DIR / str(name) / RUN_DEFAULTS_FILE
    if not path.is_file():
        return {}
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
