"""The Prefect tag concurrency limit that keeps GPU stages from crowding one GPU.

``train_teacher``, ``distill_student`` and ``generate`` carry the tag ``gpu``. A tag limit
on the Prefect server caps how many task runs with that tag are active at once, across
every flow run. The flow makes sure the limit exists when it runs against a server a team
operates; a limit already there was set on purpose (raised to the number of GPUs, or
lowered to pause GPU work) and is never changed.

Only a server that runs its background services reclaims the slot of a run that was
killed mid-stage (``prefect server start`` does). The temporary server Prefect starts for a
run without ``PREFECT_API_URL`` runs none, so a killed run would hold its slot in that
server's database forever: there the flow sets no limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.exceptions import ObjectNotFound
from prefect.settings import get_current_settings

GPU_TAG = "gpu"


@dataclass(frozen=True)
class TagLimit:
    tag: str
    slots: int
    created: bool


def configured_server() -> str | None:
    """The API URL of the Prefect server the process is pointed at; None for a temporary one."""
    return get_current_settings().api.url


def ensure_tag_limit(client: SyncPrefectClient, tag: str, slots: int) -> TagLimit:
    """Create a limit of ``slots`` on ``tag`` unless the server has one; return the one in force.

    Prefect's create call replaces an existing limit, hence the read first. Two runs
    starting at once may both create it, with the same value.
    """
    try:
        existing = client.read_concurrency_limit_by_tag(tag)
    except ObjectNotFound:
        client.create_concurrency_limit(tag=tag, concurrency_limit=slots)
        return TagLimit(tag=tag, slots=slots, created=True)
    return TagLimit(tag=tag, slots=existing.concurrency_limit, created=False)


def ensure_gpu_limit(slots: int) -> TagLimit | None:
    """Ensure the ``gpu`` tag limit on the configured Prefect server.

    None, and nothing asked of any server, when ``slots`` is 0 (the team manages its tag
    limits itself) or when no server is configured (see the module's note).
    """
    if slots < 1 or configured_server() is None:
        return None
    with get_client(sync_client=True) as client:
        return ensure_tag_limit(client, GPU_TAG, slots)
