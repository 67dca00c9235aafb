"""What the speed, scale and throughput benchmarks share: the Adult split, clocks, machine facts.

Every timing carries the load average next to it: on a shared machine a busy neighbour
inflates wall time, while the process's own CPU time is much less affected, so both are kept.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from fairdistill.data import bundled_dataset
from fairdistill.models.spec import DatasetSpec, complete_spec, load_spec
from fairdistill.models.splitting import split_table
from fairdistill.models.tables import read_table

DEFAULT_OUTPUT_DIR = Path("benchmarks") / "output"
# What every benchmark's fresh CLI process runs with: offline and quiet, and time for the
# temporary Prefect server to start on a loaded machine.
QUIET_ENVIRONMENT = {
    "DO_NOT_TRACK": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "GX_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}


def load_average() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return (round(one, 2), round(five, 2), round(fifteen, 2))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "load_average": load_average(),
        # Without written bytecode every fresh process compiles fairdistill's own modules
        # again (about 0.25 s of the validate command here), which an installed copy never does.
        "python_writes_bytecode": not os.environ.get("PYTHONDONTWRITEBYTECODE"),
    }


@dataclass
class Clock:
    """Wall and CPU seconds of named sections, in the order they ran."""

    sections: dict[str, dict[str, float]] = field(default_factory=dict)

    @contextmanager
    def section(self, name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.sections[name] = {
                "wall_s": round(time.perf_counter() - wall, 3),
                "cpu_s": round(time.process_time() - cpu, 3),
                "load_1m": load_average()[0],
            }

    def total(self, key: str = "wall_s") -> float:
        return round(sum(values[key] for values in self.sections.values()), 3)


def peak_rss_bytes() -> int:
    """Peak resident memory of this process (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass(frozen=True)
class AdultSplit:
    spec: DatasetSpec
    frame: pl.DataFrame
    train: pl.DataFrame
    test: pl.DataFrame


def adult_split(seed: int = 0, test_fraction: float = 0.2) -> AdultSplit:
    """The bundled Adult table split as the pipeline's prepare stage splits it."""
    bundled = bundled_dataset("adult")
    frame = read_table(bundled.data_path)
    spec = complete_spec(load_spec(bundled.spec_path), frame, source=str(bundled.data_path))
    train, test = split_table(frame, spec, test_fraction, seed)
    return AdultSplit(spec=spec, frame=frame, train=train, test=test)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
