"""Training time of a default run on Adult: the teacher and the student, as plain stage calls.

Run from the repository root of each version to compare (one torch thread, as a run)::

    python -m benchmarks.fit_time --label NAME

Prints one JSON line: the seconds of ``fit_teacher`` (with its label model) and of
``fit_student`` on the bundled Adult table's 39,073 training rows (seed 0), and the 1-minute
load average before and after, since on a shared machine the load moves the seconds more
than anything measured. Interleave the versions' runs so that both see the same load.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from fairdistill.data import bundled_dataset
from fairdistill.models import stages
from fairdistill.models.config import RunConfig
from fairdistill.models.spec import complete_spec, load_spec
from fairdistill.models.tables import read_table


def measure(label: str, seed: int = 0) -> dict[str, object]:
    torch.set_num_threads(1)
    dataset = bundled_dataset("adult")
    frame = read_table(dataset.data_path)
    spec = complete_spec(load_spec(dataset.spec_path), frame)
    config = RunConfig()
    prepared = stages.prepare_tables(frame, spec, config.prepare, seed=seed)
    table = prepared.codec.encode(prepared.train)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    teacher = stages.fit_teacher(prepared.codec, table, config.teacher, seed=seed).model
    teacher_done = time.perf_counter()
    stages.fit_student(teacher, prepared.codec, table, config.student, seed=seed)
    student_done = time.perf_counter()
    return {
        "label": label,
        "teacher_s": round(teacher_done - started, 1),
        "student_s": round(student_done - teacher_done, 1),
        "load1_before": round(load_before, 2),
        "load1_after": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="this version", help="a name for the output line")
    print(json.dumps(measure(parser.parse_args().label)))


if __name__ == "__main__":
    main()
