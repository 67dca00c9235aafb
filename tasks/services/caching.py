"""Stage results cached on what determines them: input digests, settings and code version.

A rerun of a failed or killed flow with the same input, config and code reuses every stage
that completed and starts at the one that did not. Each stage is handed only the part of
the run's config it reads, so the key covers exactly that part: a new fairness weight
trains the teacher again but reuses the validated input and the split. The key leaves out
what differs between runs but does not change a result: the run's context (name, MLflow
run, work folder) and the URIs of intermediate files (their sha256 digests stay in it).
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from fairdistill.tasks.services.storage import Ref
from fairdistill.tasks.services.tracking import StageContext

_PACKAGE_ROOT = Path(__file__).resolve().parents[2]


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """Digest of the pipeline's own source: any edit to the code invalidates the cache."""
    digest = hashlib.sha256(metadata.version("fairdistill").encode())
    for folder in ("models", "tasks", "flows"):
        for path in sorted((_PACKAGE_ROOT / folder).rglob("*.py")):
            digest.update(str(path.relative_to(_PACKAGE_ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _stable(value: Any) -> Any:
    if isinstance(value, StageContext):
        return None
    if isinstance(value, Ref):
        return value.sha256
    if isinstance(value, BaseModel):
        # Provenance (which MLflow run computed an output, whether it resumed) is no input.
        left_out = getattr(value, "NOT_IN_CACHE_KEY", frozenset())
        names = [name for name in type(value).model_fields if name not in left_out]
        fields = {name: getattr(value, name) for name in names}
        return {name: _stable(item) for name, item in fields.items()}
    if isinstance(value, dict):
        return {str(key): _stable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_stable(item) for item in value]
    return value


def stage_key(stage: str, parameters: dict[str, Any]) -> str:
    payload = {"stage": stage, "code": code_fingerprint(), "inputs": _stable(parameters)}
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def stage_cache_key(context: Any, parameters: dict[str, Any]) -> str | None:
    """Prefect cache key function; None (no caching) when the run asks for fresh stages."""
    run = parameters.get("context")
    if isinstance(run, StageContext) and not run.reuse_stages:
        return None
    return stage_key(context.task.name, parameters)


STAGE_CACHE: dict[str, Any] = {
    "cache_key_fn": stage_cache_key,
    "persist_result": True,
    "result_serializer": "json",
}
