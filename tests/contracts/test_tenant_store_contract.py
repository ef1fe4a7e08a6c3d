"""TenantStore: SqlTenantStore on PostgreSQL and FakeTenantStore in memory, one behaviour.

The registry is global: the rig's store writes as the schema owner, as the operator's commands
do (the application's role may only read it).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from impextech.identity.domain.errors import SlugTaken
from impextech.identity.domain.model import Tenant, TenantStatus
from tests.contracts.rigs import SIDES, IdentityRig, identity_rig
from tests.fakes.clock import T0

pytestmark = pytest.mark.anyio


@pytest.fixture(params=SIDES)
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[IdentityRig]:
    async with identity_rig(request, request.param) as made:
        yield made


async def test_a_tenant_is_found_by_id_and_by_exact_slug(rig: IdentityRig) -> None:
    assert await rig.tenants.get(rig.acme.id) == rig.acme
    assert await rig.tenants.get_by_slug("acme") == rig.acme
    assert await rig.tenants.get_by_slug("globex") == rig.globex
    assert await rig.tenants.get_by_slug("ACME") is None
    assert await rig.tenants.get_by_slug("acm") is None
    assert await rig.tenants.get(uuid.uuid4()) is None


async def test_an_added_tenant_keeps_every_field(rig: IdentityRig) -> None:
    initech = Tenant(uuid.uuid4(), "initech", "Initech Ltd.", TenantStatus.SUSPENDED, T0)
    await rig.tenants.add(initech)
    assert await rig.tenants.get(initech.id) == initech
    assert await rig.tenants.get_by_slug("initech") == initech


async def test_a_taken_slug_is_refused_and_nothing_is_added(rig: IdentityRig) -> None:
    twin = replace(rig.acme, id=uuid.uuid4(), name="Another Acme")
    with pytest.raises(SlugTaken, match="the slug 'acme' is taken"):
        await rig.tenants.add(twin)
    assert await rig.tenants.get(twin.id) is None
    assert await rig.tenants.list_all() == [rig.acme, rig.globex]


async def test_list_all_answers_every_tenant_by_slug(rig: IdentityRig) -> None:
    later = [
        Tenant(uuid.uuid4(), slug, slug.title(), status, T0)
        for slug, status in [
            ("zeta", TenantStatus.ACTIVE),
            ("beta", TenantStatus.SUSPENDED),
            ("acme-two", TenantStatus.ACTIVE),
        ]
    ]
    for tenant in later:
        await rig.tenants.add(tenant)
    assert [t.slug for t in await rig.tenants.list_all()] == [
        "acme",
        "acme-two",
        "beta",
        "globex",
        "zeta",
    ]
    assert await rig.tenants.list_all() == sorted(
        [rig.acme, rig.globex, *later], key=lambda t: t.slug
    )
