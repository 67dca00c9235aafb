"""Refuse a bad input before the run starts anything: no server, no tracking, no model code.

A run starts Prefect's temporary server, MLflow's store and imports PyTorch, MLflow and
Prefect: 10-40 s on two cores before its validate stage could say that the file is not a
table. The checks themselves need polars and the spec and take about a second, so the
command line runs them first, on the input the merged configuration names: reading the
table, the spec, fairdistill's own checks, then the expectations of the Great Expectations
suite evaluated with polars (importing GX alone costs about 3 s of CPU). Whatever they
refuse is refused in the terminal alone, before any run exists, so no MLflow or Prefect run
records it. The validate stage still checks the input in full with GX: it is the record,
and a flow started another way (a deployment) relies on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fairdistill.models.inputs import InputFiles, read_input, resolve_input
from fairdistill.models.validation import quick_check_failures, raise_for_failure_list


def refuse_bad_input(values: Mapping[str, Any]) -> None:
    """Raise the error the validate stage would raise for the input ``values`` name.

    ``values`` are the merged, not yet validated, run settings. A bundled dataset is not
    checked again (it ships validated, and the stage checks it all the same), nor are
    values the run configuration itself will refuse (a data file without its spec).
    """
    source = user_input(values)
    if source is None:
        return
    frame, spec = read_input(source)
    where = str(source.data_path)
    raise_for_failure_list(quick_check_failures(frame, spec, where), where)


def user_input(values: Mapping[str, Any]) -> InputFiles | None:
    """The user's own table and spec the settings name, or None."""
    data, spec, separator = values.get("data"), values.get("spec"), values.get("separator")
    if not isinstance(data, str) or not isinstance(spec, str):
        return None
    if separator is not None and not isinstance(separator, str):
        return None
    return resolve_input(None, data, spec, separator)
