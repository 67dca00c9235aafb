"""Store tensors and arrays as safetensors: no pickle, atomic writes, checked reads.

A pickled checkpoint runs code when it is loaded; a safetensors file holds only numbers and
a JSON header. Every write goes to a temporary file in the target folder and is renamed into
place, so a crash never leaves a half-written model; every read can check the sha256 that
the write returned, so a file changed since (tampered with, truncated) is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import safetensors.numpy
import safetensors.torch
import torch
from safetensors import SafetensorError

from fairdistill.models.errors import CheckpointError

# The key under which our metadata (as one JSON string) sits in the safetensors header,
# which holds only string-to-string metadata.
METADATA_KEY = "fairdistill"
_HEADER_LENGTH_BYTES = 8
_Loaded = TypeVar("_Loaded")


def state_to_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> bytes:
    """``tensors`` and JSON ``metadata`` as the bytes of a safetensors file."""
    # Cloning detaches from autograd and from shared storage (tied weights), which
    # safetensors refuses to write.
    plain = {
        name: tensor.detach().to("cpu").contiguous().clone() for name, tensor in tensors.items()
    }
    return safetensors.torch.save(plain, metadata=_header_metadata(metadata))


def arrays_to_bytes(arrays: dict[str, np.ndarray], metadata: dict[str, Any]) -> bytes:
    """Numpy ``arrays`` and JSON ``metadata`` as the bytes of a safetensors file."""
    plain = {name: np.ascontiguousarray(array) for name, array in arrays.items()}
    return safetensors.numpy.save(plain, metadata=_header_metadata(metadata))


def state_from_bytes(payload: bytes, source: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and metadata of a safetensors file's bytes; ``source`` names it in errors."""
    return _parse(source, payload, safetensors.torch.load), _read_metadata(source, payload)


def arrays_from_bytes(payload: bytes, source: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Numpy arrays and metadata of a safetensors file's bytes."""
    return _parse(source, payload, safetensors.numpy.load), _read_metadata(source, payload)


def verify_sha256(payload: bytes, expected_sha256: str, source: str) -> None:
    """Refuse bytes that changed since the write that returned ``expected_sha256``."""
    actual = hashlib.sha256(payload).hexdigest()
    if actual != expected_sha256.lower():
        raise CheckpointError(
            f"The stored model changed since it was written (sha256 {actual[:12]}…, "
            f"expected {expected_sha256[:12]}…)",
            file=source,
            rule="checkpoint-sha256",
            hint="the file was modified or damaged; restore it or re-run the stage that writes it",
        )


def save_state(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> str:
    """Write ``tensors`` with JSON ``metadata`` atomically; return the file's sha256."""
    return _write_atomically(Path(path), state_to_bytes(tensors, metadata))


def load_state(
    path: str | Path, expected_sha256: str | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read tensors and metadata, refusing a file whose sha256 or structure is wrong."""
    return state_from_bytes(_read_verified(Path(path), expected_sha256), str(path))


def save_arrays(path: str | Path, arrays: dict[str, np.ndarray], metadata: dict[str, Any]) -> str:
    """Write numpy ``arrays`` with JSON ``metadata`` atomically; return the file's sha256."""
    return _write_atomically(Path(path), arrays_to_bytes(arrays, metadata))


def load_arrays(
    path: str | Path, expected_sha256: str | None = None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read numpy arrays and metadata, refusing a file whose sha256 or structure is wrong."""
    return arrays_from_bytes(_read_verified(Path(path), expected_sha256), str(path))


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _header_metadata(metadata: dict[str, Any]) -> dict[str, str]:
    return {METADATA_KEY: json.dumps(metadata, sort_keys=True, allow_nan=False)}


def _write_atomically(path: Path, payload: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary: Path | None = None
    try:
        with tempfile.NamedTemporaryFile(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
        ) as handle:
            temporary = Path(handle.name)
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        raise
    return hashlib.sha256(payload).hexdigest()


def _read_verified(path: Path, expected_sha256: str | None) -> bytes:
    try:
        payload = path.read_bytes()
    except OSError as error:
        raise CheckpointError(
            f"The stored model cannot be read: {error.strerror or error}",
            file=str(path),
            rule="checkpoint-readable",
            hint="check the path, or re-run the stage that writes it",
        ) from error
    if expected_sha256 is not None:
        verify_sha256(payload, expected_sha256, str(path))
    return payload


def _parse(source: str, payload: bytes, load: Callable[[bytes], _Loaded]) -> _Loaded:
    try:
        return load(payload)
    except (SafetensorError, ValueError, OSError) as error:
        raise _not_safetensors(source, error) from error


def _read_metadata(source: str, payload: bytes) -> dict[str, Any]:
    """Our metadata from the header (the safetensors loaders return only the tensors)."""
    try:
        length = int.from_bytes(payload[:_HEADER_LENGTH_BYTES], "little")
        header = json.loads(payload[_HEADER_LENGTH_BYTES : _HEADER_LENGTH_BYTES + length])
        stored = header.get("__metadata__", {}).get(METADATA_KEY)
        metadata = {} if stored is None else json.loads(stored)
    except (ValueError, AttributeError) as error:
        raise _not_safetensors(source, error) from error
    if not isinstance(metadata, dict):
        raise _not_safetensors(source, TypeError("metadata is not a JSON object"))
    return metadata


def _not_safetensors(source: str, error: Exception) -> CheckpointError:
    return CheckpointError(
        f"The stored model is not a valid safetensors file ({error})",
        file=source,
        rule="checkpoint-format",
        hint="the file is truncated or damaged; restore it or re-run the stage that writes it",
    )
