"""The flow's `gpu` tag concurrency limit on a real Prefect server: created when missing,
never changed when a team set one."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL, temporary_settings

from fairdistill.tasks.services.concurrency import GPU_TAG, ensure_gpu_limit, ensure_tag_limit


@pytest.fixture
def client(prefect_api_url: str) -> Iterator[SyncPrefectClient]:
    with (
        temporary_settings({PREFECT_API_URL: prefect_api_url}),
        get_client(sync_client=True) as client,
    ):
        yield client


@pytest.fixture
def tag(client: SyncPrefectClient) -> Iterator[str]:
    """A tag no other test uses, its limit deleted afterwards."""
    name = f"gpu-test-{uuid.uuid4().hex[:8]}"
    yield name
    delete_limit(client, name)


def delete_limit(client: SyncPrefectClient, tag: str) -> None:
    with contextlib.suppress(ObjectNotFound):
        client.delete_concurrency_limit_by_tag(tag)


def slots(client: SyncPrefectClient, tag: str) -> int | None:
    try:
        return client.read_concurrency_limit_by_tag(tag).concurrency_limit
    except ObjectNotFound:
        return None


def test_a_missing_limit_is_created_with_the_slots_asked_for(
    client: SyncPrefectClient, tag: str
) -> None:
    assert slots(client, tag) is None
    limit = ensure_tag_limit(client, tag, 2)
    assert limit.created and limit.slots == 2
    assert slots(client, tag) == 2


@pytest.mark.parametrize("team_slots", [0, 1, 4])
def test_a_limit_the_team_set_is_left_as_it_is(
    client: SyncPrefectClient, tag: str, team_slots: int
) -> None:
    client.create_concurrency_limit(tag=tag, concurrency_limit=team_slots)
    limit = ensure_tag_limit(client, tag, 2)
    assert not limit.created and limit.slots == team_slots
    assert slots(client, tag) == team_slots


def test_the_gpu_limit_is_ensured_on_the_configured_server(client: SyncPrefectClient) -> None:
    delete_limit(client, GPU_TAG)
    try:
        assert ensure_gpu_limit(0) is None
        assert slots(client, GPU_TAG) is None
        limit = ensure_gpu_limit(3)
        assert limit is not None and limit.tag == GPU_TAG and limit.slots == 3
        assert slots(client, GPU_TAG) == 3
    finally:
        delete_limit(client, GPU_TAG)


def test_without_a_configured_server_no_limit_is_asked_for() -> None:
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        assert ensure_gpu_limit(1) is None
