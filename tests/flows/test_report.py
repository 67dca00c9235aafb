"""The run report as a person sees it: a real run, its HTML opened in headless Chromium.

Chromium is driven over the DevTools protocol (with the ``websockets`` client Prefect already
installs), so console messages, script errors and every network request are caught exactly.
A screenshot of the first screen is kept in ``test-artifacts/`` for CI to publish.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import polars as pl
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner
from websockets.sync.client import connect

from fairdistill.data import bundled_dataset
from fairdistill.flows.cli import app
from fairdistill.flows.settings import load_settings
from fairdistill.models.config import RunConfig
from fairdistill.models.errors import QualityGateError
from fairdistill.models.reporting import ReportData

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"
SCREEN = (1280, 900)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
]
FAST = {
    "teacher": {"epochs": 2},
    "student": {"epochs": 2},
    "evaluate": {"max_rows": 600},
}


@pytest.fixture(scope="module")
def two_attribute_input(tmp_path_factory: pytest.TempPathFactory, adult_sample: pl.DataFrame):
    """Adult with sex and race as sensitive attributes, so the report shows an intersection."""
    folder = tmp_path_factory.mktemp("report-input")
    data = folder / "adult_sample.parquet"
    adult_sample.write_parquet(data)
    spec = yaml.safe_load(bundled_dataset("adult").spec_path.read_text())
    spec["sensitive"] = [
        {"column": "sex", "privileged": ["Male"]},
        {"column": "race", "privileged": ["White"]},
    ]
    # Race crossed with sex leaves small (group, label) cells in a 3,000-row sample.
    spec["min_group_rows"] = 20
    spec_path = folder / "adult.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    return {"data": str(data), "spec": str(spec_path)}


@pytest.fixture(scope="module")
def finished_run(two_attribute_input: dict, tmp_path_factory: pytest.TempPathFactory):
    from fairdistill.flows.regenerate import regenerate_fair_dataset

    output = tmp_path_factory.mktemp("published")
    config = RunConfig.model_validate(
        {
            **two_attribute_input,
            **FAST,
            "output": str(output),
            "run_name": "adult-report",
            "gates": {
                "min_utility_ratio": 0.3,
                "max_exact_copy_rate": 0.5,
                "max_exact_copy_excess": None,
                "max_dcr_share_below_holdout_p5": None,
            },
        }
    )
    return regenerate_fair_dataset(config)


@pytest.fixture(scope="module")
def page(finished_run) -> str:
    return Path(finished_run.published.report_html).read_text(encoding="utf-8")


def embedded_images(page: str) -> list[Image.Image]:
    images = []
    for encoded in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page):
        image = Image.open(io.BytesIO(base64.b64decode(encoded)))
        image.load()
        images.append(image)
    return images


def colour_count(image: Image.Image) -> int:
    return len(image.convert("RGB").getcolors(maxcolors=1 << 24) or [])


def test_the_published_folder_holds_a_self_contained_report(finished_run, page: str) -> None:
    published = finished_run.published
    assert Path(published.report_html) == Path(published.folder) / "report.html"
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    images = embedded_images(page)
    # Two attributes and their intersection, utility, marginals, associations, distances,
    # the two models' training curves and the latent picture.
    assert len(images) == 10
    assert all(colour_count(image) > 1 for image in images)
    for text in ("intersection", "sex=privileged|race=unprivileged", "race", "PASSED"):
        assert text in page


def test_the_report_is_logged_to_mlflow_with_every_figure(finished_run, page: str) -> None:
    mlflow.set_tracking_uri(finished_run.tracking_uri)
    publish_run = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"tags.mlflow.parentRunId = '{finished_run.mlflow_run_id}' and "
        "tags.`fairdistill.stage` = 'publish'",
        output_format="list",
    )[0]
    artifacts = publish_run.info.artifact_uri.removeprefix("file://")
    assert (Path(artifacts) / "report.html").read_text(encoding="utf-8") == page
    figures = sorted((Path(artifacts) / "report" / "figures").glob("*.png"))
    assert len(figures) == 10
    data = ReportData.from_json((Path(artifacts) / "report/report_data.json").read_text())
    assert data.provenance.mlflow_run_id == finished_run.mlflow_run_id
    assert data.provenance.flow_run_id == finished_run.flow_run_id
    assert {m.name for m in data.models} == {"teacher", "student"}
    teacher = data.models[0]
    assert set(teacher.history) >= {"reconstruction", "kl", "dcor", "label"}
    assert all(len(series) == 2 for series in teacher.history.values())
    assert teacher.latents is not None and len(teacher.latents.points) == 2000
    assert set(teacher.latents.groups) == {"sex", "race"}
    assert set(data.provenance.stage_runs) >= {"train_teacher", "distill_student", "evaluate"}


def test_the_cli_renders_the_same_report_again_from_mlflow(
    finished_run, page: str, tmp_path: Path
) -> None:
    runner = CliRunner()
    by_id = tmp_path / "by-id.html"
    result = runner.invoke(app, ["report", finished_run.mlflow_run_id, "--output", str(by_id)])
    assert result.exit_code == 0, result.output
    assert str(by_id) in result.output
    assert by_id.read_text(encoding="utf-8") == page
    missing = runner.invoke(app, ["report", "0123456789abcdef0123456789abcdef"])
    assert missing.exit_code == 2
    assert "No MLflow run '0123456789abcdef0123456789abcdef'" in missing.output


def test_a_missed_gate_still_logs_the_report_and_publishes_nothing(
    two_attribute_input: dict, finished_run, tmp_path: Path
) -> None:
    from fairdistill.flows.regenerate import regenerate_fair_dataset

    config = RunConfig.model_validate(
        {
            **two_attribute_input,
            **FAST,
            "output": str(tmp_path),
            "run_name": "adult-report-gated",
            "gates": {"min_demographic_parity_ratio": 1.0},
        }
    )
    with pytest.raises(QualityGateError, match="fairdistill report") as raised:
        regenerate_fair_dataset(config)
    assert list(tmp_path.iterdir()) == []
    command = re.search(r"fairdistill report (\w+)", str(raised.value))
    assert command is not None
    page = _publish_artifact(command.group(1), "report.html")
    verdict = page[page.index('id="verdict"') : page.index("</section>")]
    assert "FAILED" in verdict and "min_demographic_parity_ratio" in verdict
    assert "missed by" in verdict and "Published to" not in verdict
    # Every training stage came from the first run's cache; the report still finds the
    # models' runs and their training records.
    data = ReportData.from_json(_publish_artifact(command.group(1), "report/report_data.json"))
    assert {"train_teacher", "distill_student"} <= set(data.provenance.reused_stages)
    assert all(model.history and model.latents for model in data.models)


def _publish_artifact(parent_run_id: str, path: str) -> str:
    mlflow.set_tracking_uri(load_settings().tracking_uri)
    publish = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}' and "
        "tags.`fairdistill.stage` = 'publish'",
        output_format="list",
    )[0]
    assert publish.info.status == "FAILED"
    return mlflow.artifacts.load_text(f"runs:/{publish.info.run_id}/{path}")


class Browser:
    """A headless Chromium page driven over the DevTools protocol."""

    def __init__(self, executable: str, profile: Path) -> None:
        self.process = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port = self._debugging_port(profile / "DevToolsActivePort")
        self.socket = connect(self._page_socket(port), max_size=None, open_timeout=20)
        self.events: list[dict[str, Any]] = []
        self._next_id = 0

    def _debugging_port(self, announcement: Path, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if announcement.exists() and announcement.read_text().strip():
                return int(announcement.read_text().split()[0])
            if self.process.poll() is not None:
                raise RuntimeError(f"chromium exited with code {self.process.returncode}")
            time.sleep(0.1)
        raise TimeoutError("chromium did not open its DevTools port")

    @staticmethod
    def _page_socket(port: int) -> str:
        from urllib.request import urlopen

        with urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            targets = json.load(response)
        return next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        self.socket.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, event: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == event for e in self.events):
            self.events.append(json.loads(self.socket.recv(timeout=deadline - time.monotonic())))

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def close(self) -> None:
        self.socket.close()
        self.process.terminate()
        self.process.wait(timeout=20)


def chromium_executable() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed; the CI script installs it with apt-get")
    pytest.skip(reason="chromium is not installed (apt-get install chromium); CI has it")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium_executable()
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        opened = Browser(executable, Path(profile))
        try:
            yield opened
        finally:
            opened.close()


def problems(events: list[dict[str, Any]]) -> list[str]:
    """Console errors, uncaught exceptions, error log entries and requests leaving the file."""
    found = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params["type"] in {"error", "assert"}:
            found.append(f"console {params['type']}: {params['args']}")
        elif method == "Runtime.exceptionThrown":
            found.append(f"exception: {params['exceptionDetails']}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            found.append(f"log: {params['entry']['text']}")
        elif method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            if not url.startswith(("file:", "data:")):
                found.append(f"request to {url}")
    return found


def test_the_report_opens_in_a_browser_with_the_verdict_on_the_first_screen(
    finished_run, browser: Browser
) -> None:
    for domain in ("Page", "Runtime", "Log", "Network"):
        browser.call(f"{domain}.enable")
    width, height = SCREEN
    browser.call(
        "Emulation.setDeviceMetricsOverride",
        width=width,
        height=height,
        deviceScaleFactor=1,
        mobile=False,
    )
    browser.call("Page.navigate", url=Path(finished_run.published.report_html).as_uri())
    browser.wait_for("Page.loadEventFired")
    images = browser.evaluate(
        "[...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
    )
    assert len(images) == 10
    assert all(complete and w > 100 and h > 100 for complete, w, h in images)
    verdict = browser.evaluate(
        "(() => { const v = document.body.firstElementChild; const r = v.getBoundingClientRect();"
        " return {id: v.id, top: r.top, bottom: r.bottom, text: v.innerText}; })()"
    )
    assert verdict["id"] == "verdict"
    assert verdict["top"] >= 0 and verdict["bottom"] <= height
    assert "PASSED" in verdict["text"] and "Fairness" in verdict["text"]
    # Fidelity and privacy figures sit beside the real held-out rows' own scores.
    headers = browser.evaluate(
        "[...document.querySelectorAll('#fidelity th, #privacy th')].map(h => h.innerText)"
    )
    assert headers.count("real held-out rows") == 2
    readings = browser.evaluate("document.querySelector('#fidelity table').innerText")
    assert "real held-out rows by" in readings or "as real held-out rows" in readings
    shot = base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"])
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "report-screenshot.png").write_bytes(shot)
    screen = Image.open(io.BytesIO(shot)).convert("RGB")
    assert screen.size == SCREEN
    top = screen.crop((0, 0, width, 300))
    assert colour_count(top) > 20, "the top of the first screen is blank"
    # The verdict box is filled green: many of its pixels are that colour.
    green = sum(count for count, rgb in top.getcolors(1 << 24) if rgb == (234, 246, 236))
    assert green > 0.2 * width * 300
    assert problems(browser.events) == []
