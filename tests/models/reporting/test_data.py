"""The report's plain data: whether it passed, and its JSON form, NaN and schema version kept."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from fairdistill.models.reporting.data import REPORT_SCHEMA_VERSION, ReportData


def test_a_report_passes_when_every_gate_held_or_none_is_set(
    report: ReportData, failed_report: ReportData, ungated_report: ReportData
) -> None:
    assert report.passed and ungated_report.passed
    assert not failed_report.passed
    one_of_two = replace(report, gates=[*report.gates, *failed_report.gates])
    assert not one_of_two.passed


def test_json_keeps_nan_the_field_order_and_the_schema_version(report: ReportData) -> None:
    payload = json.loads(report.to_json())
    assert list(payload)[:3] == ["run_name", "dataset", "created_at"]
    assert payload["schema_version"] == REPORT_SCHEMA_VERSION
    assert math.isnan(payload["headlines"][2]["synthetic"])
    assert math.isnan(ReportData.from_json(report.to_json()).headlines[2].synthetic)


def test_json_that_is_no_report_object_is_refused() -> None:
    with pytest.raises(ValueError, match="schema version None"):
        ReportData.from_json("[1, 2]")


def test_stored_data_of_another_schema_is_refused(report: ReportData) -> None:
    payload = json.loads(report.to_json())
    with pytest.raises(ValueError, match="schema version 99"):
        ReportData.from_json(json.dumps({**payload, "schema_version": 99}))
    del payload["fairness"]
    with pytest.raises(ValueError, match="does not match its schema"):
        ReportData.from_json(json.dumps(payload))
