"""Routes under /api/v1/products."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel, Field, StrictInt, StrictStr

from impextech.catalog.adapters.positions import position_parser
from impextech.catalog.domain.model import (
    MAX_CATEGORY,
    MAX_DESCRIPTION,
    MAX_NAME,
    MAX_STOCK,
    SKU_PATTERN,
    Product,
    ProductSort,
    ProductStatus,
)
from impextech.catalog.service.ports import ProductQuery
from impextech.catalog.service.products import CatalogService, NewProduct, ProductChanges
from impextech.kernel.callers import CurrentPrincipal, OptionalPrincipal, StorefrontTenant
from impextech.kernel.cursors import CursorCodec
from impextech.kernel.domain.errors import (
    FieldIssue,
    InvalidInput,
    PreconditionFailed,
    PreconditionRequired,
)
from impextech.kernel.domain.money import CURRENCY_EXPONENTS, MAX_AMOUNT, Money
from impextech.kernel.pagination import after_cursor, page_response, position_to_json
from impextech.kernel.web import (
    INTEGRAL,
    OPTIONAL_BEARER,
    MultiLine,
    SingleLine,
    StrictJsonRoute,
    StrictModel,
    json_response,
    problem_responses,
    required_header,
)


class CatalogWeb:
    """The catalog services the HTTP edge needs, stored on ``app.state.catalog``."""

    def __init__(self, service: CatalogService, cursors: CursorCodec) -> None:
        self.service = service
        self.cursors = cursors


def catalog_web(request: Request) -> CatalogWeb:
    # Read directly, not as a dependency: each dependency FastAPI resolves costs every request.
    web: CatalogWeb = request.app.state.catalog
    return web


# The pattern is the shape; the document also lists the currencies Money knows.
_KNOWN_CURRENCIES: dict[str, Any] = {"enum": sorted(CURRENCY_EXPONENTS)}


class MoneyIO(StrictModel):
    amount: Annotated[
        StrictInt, Field(ge=0, le=MAX_AMOUNT, description="Integer minor units (cents)"), INTEGRAL
    ]
    currency: StrictStr = Field(
        pattern=r"^[A-Z]{3}$",
        examples=["EUR"],
        json_schema_extra=_KNOWN_CURRENCIES,
    )

    def to_money(self) -> Money:
        try:
            return Money(self.amount, self.currency)
        except InvalidInput as exc:
            raise InvalidInput(
                exc.detail, [FieldIssue(("body", "price", *i.path), i.message) for i in exc.issues]
            ) from None


class ProductOut(BaseModel):
    id: UUID
    seller_id: UUID
    sku: str
    name: str
    description: str
    category: str
    price: MoneyIO
    stock: int
    status: ProductStatus
    version: int
    created_at: datetime
    updated_at: datetime


def product_json(p: Product) -> dict[str, object]:
    """A product as its response document (the shape ``ProductOut`` documents).

    Built as a plain dict and serialised in one pass by pydantic-core: the domain object is
    already valid, and building response models per row cost more than the query on the hot list.
    """
    return {
        "id": p.id,
        "seller_id": p.seller_id,
        "sku": p.sku,
        "name": p.name,
        "description": p.description,
        "category": p.category,
        "price": {"amount": p.price.amount, "currency": p.price.currency},
        "stock": p.stock,
        "status": p.status.value,
        "version": p.version,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
    }


class ProductPageOut(BaseModel):
    items: list[ProductOut]
    next_cursor: str | None


Sku = Annotated[str, Field(pattern=SKU_PATTERN.pattern)]
Stock = Annotated[StrictInt, Field(ge=0, le=MAX_STOCK), INTEGRAL]


class ProductIn(StrictModel):
    sku: Sku
    name: SingleLine = Field(min_length=1, max_length=MAX_NAME)
    description: MultiLine = Field(default="", max_length=MAX_DESCRIPTION)
    category: SingleLine = Field(min_length=1, max_length=MAX_CATEGORY)
    price: MoneyIO
    stock: Stock


class ProductPatch(StrictModel):
    sku: Sku | None = None
    name: SingleLine | None = Field(default=None, min_length=1, max_length=MAX_NAME)
    description: MultiLine | None = Field(default=None, max_length=MAX_DESCRIPTION)
    category: SingleLine | None = Field(default=None, min_length=1, max_length=MAX_CATEGORY)
    price: MoneyIO | None = None
    stock: Stock | None = None


_ETAG = re.compile(r'^\s*(?:W/)?"(\d{1,9})"\s*$')
# Read here rather than declared required, so a missing one answers 428 (not 422); the
# document still says it is required.
IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=64, include_in_schema=False)]
IF_MATCH_REQUIRED = required_header(
    "If-Match",
    'The ETag you read (e.g. "3"); without it 428, any other value 412',
    r"\S",
)


def _expected_version(if_match: str | None) -> int:
    if if_match is None or not if_match.strip():
        raise PreconditionRequired()
    match = _ETAG.match(if_match)
    if match is None:
        raise PreconditionFailed('If-Match must be an ETag such as "3"')
    return int(match.group(1))


def _product_response(product: Product, status_code: int = 200, **headers: str) -> Response:
    return json_response(product_json(product), status_code, ETag=product.etag, **headers)


router = APIRouter(prefix="/api/v1/products", tags=["products"], route_class=StrictJsonRoute)


class ProductFilters(BaseModel):
    """The product list's query parameters, validated as one model."""

    q: SingleLine | None = Field(default=None, max_length=200, description="Full-text search")
    category: SingleLine | None = Field(default=None, max_length=MAX_CATEGORY)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    min_price: int | None = Field(default=None, ge=0, le=MAX_AMOUNT)
    max_price: int | None = Field(default=None, ge=0, le=MAX_AMOUNT)
    in_stock: bool | None = None
    seller_id: UUID | None = None
    sort: ProductSort = ProductSort.NEWEST
    cursor: str | None = Field(default=None, max_length=512, description="From next_cursor")
    limit: int = Field(default=20, ge=1, le=100)


@router.get(
    "",
    response_model=ProductPageOut,
    responses=problem_responses(400, 401, 404),
    openapi_extra=OPTIONAL_BEARER,
    summary="Browse and search this marketplace's active products",
)
async def list_products(
    request: Request, tenant: StorefrontTenant, filters: Annotated[ProductFilters, Query()]
) -> Response:
    web = catalog_web(request)
    f = filters
    if f.min_price is not None and f.max_price is not None and f.min_price > f.max_price:
        raise InvalidInput(
            "min_price is above max_price",
            [FieldIssue(("query", "min_price"), "must not exceed max_price")],
        )
    shape = f"products:{f.sort.value}"
    after = after_cursor(web.cursors, f.cursor, tenant.id, shape, position_parser(f.sort))
    page = await web.service.search(
        tenant.id,
        ProductQuery(
            text=f.q,
            category=f.category,
            currency=f.currency,
            min_price=f.min_price,
            max_price=f.max_price,
            in_stock=f.in_stock,
            seller_id=f.seller_id,
            sort=f.sort,
            after=after,
            limit=f.limit,
        ),
    )
    items = [product_json(p) for p in page.items]
    return page_response(web.cursors, tenant.id, shape, items, page.next_position, position_to_json)


@router.get(
    "/{product_id}",
    response_model=ProductOut,
    responses=problem_responses(400, 401, 404),
    openapi_extra=OPTIONAL_BEARER,
    summary="Get one product (its ETag header is the version to send in If-Match)",
)
async def get_product(
    product_id: UUID,
    tenant: StorefrontTenant,
    viewer: OptionalPrincipal,
    request: Request,
) -> Response:
    product = await catalog_web(request).service.get(tenant.id, product_id, viewer)
    return _product_response(product)


@router.post(
    "",
    status_code=201,
    response_model=ProductOut,
    responses=problem_responses(401, 403, 409, body=True),
    summary="List a new product (sellers and admins)",
)
async def create_product(
    request: Request, body: ProductIn, principal: CurrentPrincipal
) -> Response:
    web = catalog_web(request)
    product = await web.service.create(
        principal,
        NewProduct(
            sku=body.sku,
            name=body.name,
            description=body.description,
            category=body.category,
            price=body.price.to_money(),
            stock=body.stock,
        ),
    )
    return _product_response(product, 201, Location=f"/api/v1/products/{product.id}")


@router.patch(
    "/{product_id}",
    response_model=ProductOut,
    responses=problem_responses(401, 403, 404, 409, 412, 428, body=True),
    openapi_extra=IF_MATCH_REQUIRED,
    summary="Change a product you own (admins: any); needs If-Match",
)
async def update_product(
    product_id: UUID,
    body: ProductPatch,
    principal: CurrentPrincipal,
    request: Request,
    if_match: IfMatch = None,
) -> Response:
    web = catalog_web(request)
    changes = ProductChanges(
        sku=body.sku,
        name=body.name,
        description=body.description,
        category=body.category,
        price=body.price.to_money() if body.price is not None else None,
        stock=body.stock,
    )
    # The body is judged before the precondition: an invalid one is 422 whatever If-Match says.
    expected = _expected_version(if_match)
    product = await web.service.update(principal, product_id, expected, changes)
    return _product_response(product)


@router.delete(
    "/{product_id}",
    response_model=ProductOut,
    responses=problem_responses(401, 403, 404, 412, 428),
    openapi_extra=IF_MATCH_REQUIRED,
    summary="Archive a product you own (admins: any); needs If-Match",
)
async def archive_product(
    product_id: UUID,
    principal: CurrentPrincipal,
    request: Request,
    if_match: IfMatch = None,
) -> Response:
    service = catalog_web(request).service
    product = await service.archive(principal, product_id, _expected_version(if_match))
    return _product_response(product)
