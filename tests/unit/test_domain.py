from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from impextech.catalog.domain.model import Product, ProductStatus
from impextech.identity.domain.errors import WeakPassword
from impextech.identity.domain.model import validate_slug
from impextech.identity.domain.passwords import check_password
from impextech.kernel.cursors import CursorCodec
from impextech.kernel.domain.errors import InvalidInput
from impextech.kernel.domain.money import Money


def test_money_accepts_integer_minor_units() -> None:
    assert Money(1999, "EUR") == Money(1999, "EUR")


@pytest.mark.parametrize(
    ("amount", "currency"),
    [(-1, "EUR"), (10**12 + 1, "EUR"), (1, "XXX"), (1, "eur"), (1.5, "EUR"), (True, "EUR")],
)
def test_money_refuses_bad_values(amount: object, currency: str) -> None:
    with pytest.raises(InvalidInput):
        Money(amount, currency)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short", "at least 12"),
        ("password1234", "commonly used"),
        ("Password2026!", "commonly used"),
        ("aaaaaaaaaaaaaaaa", "distinct"),
        ("ada.lovelace-rocks", "email"),
        ("x" * 257, "at most"),
    ],
)
def test_weak_passwords_are_refused_with_a_reason(password: str, reason: str) -> None:
    with pytest.raises(WeakPassword) as caught:
        check_password(password, email="ada.lovelace@example.org")
    assert reason in caught.value.detail
    assert caught.value.issues[0].path == ("body", "password")


def test_a_long_unusual_passphrase_is_accepted() -> None:
    check_password("plum orbit cactus 41 lantern", email="ada@example.org", display_name="Ada")


@pytest.mark.parametrize("slug", ["acme", "globex", "a-b-c", "shop42"])
def test_valid_slugs(slug: str) -> None:
    assert validate_slug(slug) == slug


@pytest.mark.parametrize("slug", ["A", "ab", "-acme", "acme-", "ac--me", "www", "ac me", "é" * 5])
def test_invalid_slugs(slug: str) -> None:
    with pytest.raises(InvalidInput):
        validate_slug(slug)


def _product(**overrides: object) -> Product:
    now = datetime.now(UTC)
    fields: dict[str, object] = {
        "id": uuid.uuid4(),
        "tenant_id": uuid.uuid4(),
        "seller_id": uuid.uuid4(),
        "sku": "SKU-1",
        "name": "Tent",
        "description": "",
        "category": "outdoor",
        "price": Money(100, "EUR"),
        "stock": 1,
        "status": ProductStatus.ACTIVE,
        "version": 1,
        "created_at": now,
        "updated_at": now,
        **overrides,
    }
    return Product(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "overrides",
    [{"sku": "-bad"}, {"sku": "x" * 65}, {"stock": -1}, {"name": ""}, {"category": ""}],
)
def test_product_rules(overrides: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        _product(**overrides)


def test_product_change_bumps_nothing_by_itself_and_revalidates() -> None:
    product = _product()
    later = datetime.now(UTC)
    changed = product.changed(later, stock=7, version=2)
    assert (changed.stock, changed.version, changed.updated_at) == (7, 2, later)
    assert product.stock == 1
    with pytest.raises(InvalidInput):
        product.changed(later, stock=-3)
    assert product.etag == '"1"'


def test_cursors_are_bound_to_tenant_and_shape() -> None:
    codec = CursorCodec(b"k" * 32)
    tenant, other = uuid.uuid4(), uuid.uuid4()
    cursor = codec.encode(tenant, "products:newest", [5, "x"])
    assert codec.decode(cursor, tenant, "products:newest") == [5, "x"]
    for bad_tenant, shape in ((other, "products:newest"), (tenant, "products:name")):
        with pytest.raises(InvalidInput):
            codec.decode(cursor, bad_tenant, shape)
    tampered = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    for garbage in (tampered, "!!!", "", "a" * 40):
        with pytest.raises(InvalidInput):
            codec.decode(garbage, tenant, "products:newest")
    assert CursorCodec(b"z" * 32).encode(tenant, "products:newest", [5, "x"]) != cursor
