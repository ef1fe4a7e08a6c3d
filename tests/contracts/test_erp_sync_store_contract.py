"""ErpSyncStore: SqlErpSyncStore and FakeErpSyncStore, one behaviour."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from tests.contracts.rigs import SIDES, CatalogRig, add, catalog_rig, product

pytestmark = pytest.mark.anyio


@pytest.fixture(params=SIDES)
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[CatalogRig]:
    async with catalog_rig(request, request.param) as made:
        yield made


async def test_the_erp_sync_mark_only_moves_forward_within_the_tenant(rig: CatalogRig) -> None:
    tent = product(rig.acme, "TENT-1", version=3)
    await add(rig, tent)
    async with rig.erp_sync_uow(rig.acme.tenant_id) as uow:
        assert await uow.erp_sync.get_with_synced_version(tent.id) == (tent, None)
        await uow.erp_sync.record_synced(tent.id, 2)
    async with rig.erp_sync_uow(rig.acme.tenant_id) as uow:
        assert await uow.erp_sync.get_with_synced_version(tent.id) == (tent, None)
        await uow.erp_sync.record_synced(tent.id, 2)
        await uow.erp_sync.record_synced(tent.id, 1)
        await uow.commit()
    async with rig.erp_sync_uow(rig.globex.tenant_id) as uow:
        assert await uow.erp_sync.get_with_synced_version(tent.id) is None
        await uow.erp_sync.record_synced(tent.id, 3)
        await uow.erp_sync.record_synced(uuid.uuid4(), 3)
        await uow.commit()
    async with rig.erp_sync_uow(rig.acme.tenant_id) as uow:
        assert await uow.erp_sync.get_with_synced_version(tent.id) == (tent, 2)
