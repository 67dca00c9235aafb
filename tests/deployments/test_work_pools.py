"""The shipped work-pool templates pass Prefect's own checks and render what workers need.

Prefect checks a base job template twice when a pool is created: the request schema
(every `{{ placeholder }}` in `job_configuration` is a declared variable) and the API
(the variables are a valid JSON schema and their defaults satisfy it). Both checks are
called here exactly as the server calls them. A worker then renders the template with a
deployment's job variables; that rendering is Prefect's own code too, run offline.
"""

from __future__ import annotations

import asyncio
import json
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import pytest
from docker.models.containers import RUN_CREATE_KWARGS, RUN_HOST_CONFIG_KWARGS
from docker.types import HostConfig
from prefect.client.orchestration import PrefectClient
from prefect.server.schemas.actions import WorkPoolCreate
from prefect.utilities.schema_tools.validation import is_valid_schema, validate
from prefect.utilities.templating import find_placeholders
from prefect.workers.base import BaseJobConfiguration
from prefect.workers.process import ProcessJobConfiguration, ProcessWorker
from pydantic import ConfigDict

WORK_POOLS = Path(__file__).resolve().parents[2] / "deployments" / "work-pools"
TEMPLATES = {
    "process.json": "process",
    "docker-gpu.json": "docker",
    "kubernetes-gpu.json": "kubernetes",
}
FAIRDISTILL_ENV = ("FAIRDISTILL_PROJECT_DIR", "FAIRDISTILL_HOME", "MLFLOW_TRACKING_URI")

# An address nothing listens on: rendering must not need the API (no block or Prefect
# variable references in the templates), and if it ever did, the test fails loudly.
OFFLINE_CLIENT = PrefectClient(api="http://127.0.0.1:9/api")


Job = TypeVar("Job", bound=BaseJobConfiguration)


class RenderedJob(BaseJobConfiguration):
    """The base job configuration, keeping the fields a Docker or Kubernetes worker adds."""

    model_config = ConfigDict(extra="allow")


def load_template(file_name: str) -> dict[str, Any]:
    return json.loads((WORK_POOLS / file_name).read_text(encoding="utf-8"))


def render(job_class: type[Job], template: dict[str, Any], job_variables: dict[str, Any]) -> Job:
    return asyncio.run(
        job_class.from_template_and_values(template, job_variables, client=OFFLINE_CLIENT)
    )


def collection_default_template(worker_type: str) -> dict[str, Any]:
    """The default template Prefect's server offers for a worker type it knows by name."""
    registry = resources.files("prefect.server.api") / "collections_data" / "views"
    metadata = json.loads((registry / "aggregate-worker-metadata.json").read_text())
    workers = (worker for collection in metadata.values() for worker in collection.values())
    return next(w for w in workers if w["type"] == worker_type)["default_base_job_configuration"]


@pytest.mark.parametrize(("file_name", "pool_type"), TEMPLATES.items())
def test_template_passes_the_servers_work_pool_checks(file_name: str, pool_type: str) -> None:
    template = load_template(file_name)

    WorkPoolCreate(name="gpu", type=pool_type, base_job_template=template)
    variables = template["variables"]
    is_valid_schema(variables, preprocess=False)
    defaults = {
        name: spec["default"] for name, spec in variables["properties"].items() if "default" in spec
    }
    validate(
        defaults,
        variables,
        raise_on_error=True,
        preprocess=True,
        ignore_required=True,
        allow_none_with_default=True,
    )


@pytest.mark.parametrize("file_name", TEMPLATES)
def test_every_placeholder_is_a_declared_variable(file_name: str) -> None:
    template = load_template(file_name)

    used = {p.name for p in find_placeholders(json.dumps(template["job_configuration"]))}

    assert used <= set(template["variables"]["properties"])
    assert {"project_dir", "fairdistill_home", "mlflow_tracking_uri"} <= used


def test_the_server_check_refuses_an_undeclared_placeholder() -> None:
    template = load_template("process.json")
    del template["variables"]["properties"]["mlflow_tracking_uri"]

    with pytest.raises(ValueError, match="mlflow_tracking_uri"):
        WorkPoolCreate(name="cpu", type="process", base_job_template=template)


def test_process_template_keeps_every_field_of_prefects_default() -> None:
    default = ProcessWorker.get_default_base_job_template()
    template = load_template("process.json")

    assert set(default["job_configuration"]) <= set(template["job_configuration"])
    assert set(default["variables"]["properties"]) <= set(template["variables"]["properties"])


def test_process_job_sets_the_fairdistill_environment_from_job_variables() -> None:
    job = render(
        ProcessJobConfiguration,
        load_template("process.json"),
        {
            "project_dir": "/srv/fairdistill",
            "fairdistill_home": "/srv/fairdistill-home",
            "mlflow_tracking_uri": "http://mlflow.internal:5000",
            "env": {"EXTRA": "1"},
        },
    )

    assert job.env == {
        "FAIRDISTILL_PROJECT_DIR": "/srv/fairdistill",
        "FAIRDISTILL_HOME": "/srv/fairdistill-home",
        "MLFLOW_TRACKING_URI": "http://mlflow.internal:5000",
        "EXTRA": "1",
    }
    assert job.stream_output is True


def test_process_job_leaves_unset_variables_to_the_workers_environment() -> None:
    job = render(ProcessJobConfiguration, load_template("process.json"), {})

    # The process worker starts flow runs with its own environment plus `env`, so an
    # absent key inherits the worker's value instead of overwriting it with nothing.
    assert not set(FAIRDISTILL_ENV) & set(job.env)


@pytest.mark.parametrize(
    ("file_name", "worker_type"),
    [("docker-gpu.json", "docker"), ("kubernetes-gpu.json", "kubernetes")],
)
def test_container_templates_use_only_fields_the_worker_knows(
    file_name: str, worker_type: str
) -> None:
    known = set(collection_default_template(worker_type)["job_configuration"])
    # Added to the Docker worker after the bundled registry snapshot; it is passed
    # through to docker-py's `containers.create`.
    known |= {"container_create_kwargs"} if worker_type == "docker" else set()

    assert set(load_template(file_name)["job_configuration"]) <= known


def test_docker_job_requests_all_nvidia_gpus_in_a_form_docker_py_accepts() -> None:
    job = render(
        RenderedJob,
        load_template("docker-gpu.json"),
        {"mlflow_tracking_uri": "http://mlflow.internal:5000"},
    )
    create_kwargs = job.model_extra["container_create_kwargs"]

    assert set(create_kwargs) <= set(RUN_CREATE_KWARGS) | set(RUN_HOST_CONFIG_KWARGS)
    host_config = HostConfig(version="1.44", device_requests=create_kwargs["device_requests"])
    (request,) = host_config["DeviceRequests"]
    assert request["Driver"] == "nvidia"
    assert request["Count"] == -1
    assert request["Capabilities"] == [["gpu"]]
    assert job.env == {
        "FAIRDISTILL_PROJECT_DIR": "/opt/fairdistill",
        "FAIRDISTILL_HOME": "/var/lib/fairdistill",
        "MLFLOW_TRACKING_URI": "http://mlflow.internal:5000",
    }
    assert job.model_extra["volumes"] == ["fairdistill-home:/var/lib/fairdistill"]


def test_docker_gpu_count_is_a_job_variable() -> None:
    job = render(RenderedJob, load_template("docker-gpu.json"), {"gpu_count": 1})

    assert job.model_extra["container_create_kwargs"]["device_requests"][0]["count"] == 1


def test_kubernetes_job_limits_the_pod_to_nvidia_gpus() -> None:
    job = render(
        RenderedJob,
        load_template("kubernetes-gpu.json"),
        {"gpu_count": 2, "memory_limit": "16Gi", "mlflow_tracking_uri": "http://mlflow:5000"},
    )
    pod_spec = job.model_extra["job_manifest"]["spec"]["template"]["spec"]
    (container,) = pod_spec["containers"]

    assert container["resources"]["limits"] == {"nvidia.com/gpu": 2, "memory": "16Gi"}
    # Unset requests are dropped, not sent to the API as empty strings.
    assert container["resources"]["requests"] == {}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in (
        pod_spec["tolerations"]
    )
    assert job.env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert job.env["FAIRDISTILL_PROJECT_DIR"] == "/opt/fairdistill"
    assert "FAIRDISTILL_HOME" not in job.env
