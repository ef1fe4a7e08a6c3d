"""Bulk product import files: CSV in, validated rows and rejected rows (with reasons) out.

Pure: no I/O. The file is read in two steps so the HTTP edge can refuse a broken file at once
(``read_import``: encoding, CSV syntax, header, size) while the job validates every row
(``validate_rows``) with the same rules as the API: the domain's own validators and ``Money``
decide, nothing here restates a limit.
"""

from __future__ import annotations

import csv
import enum
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar
from uuid import UUID

from impextech.catalog.domain.model import (
    Product,
    ProductStatus,
    validate_category,
    validate_description,
    validate_name,
    validate_sku,
    validate_stock,
)
from impextech.kernel.domain.errors import (
    BadRequest,
    FieldIssue,
    Forbidden,
    InvalidInput,
    TooLarge,
)
from impextech.kernel.domain.money import Money
from impextech.kernel.domain.text import multi_line, single_line

COLUMNS = ("sku", "name", "description", "category", "price_amount", "currency", "stock")
MAX_ROWS = 10_000
# The header must name exactly the seven columns; a few extra names are still worth reporting
# one by one, but a header of thousands is refused as a whole before any name is looked at
# (one field per byte fits in a body: listing each was 0.8 s of work and a 37 MB answer).
MAX_COLUMNS = 32
# The most problems one refusal lists; the rest are counted in a last one.
MAX_ISSUES = 20
# A whole number as the file writes it; the sign is kept so "-5" is refused as out of range
# rather than as "not a number". Twenty digits is beyond any limit and keeps int() cheap.
_INTEGER = re.compile(r"[+-]?[0-9]{1,20}")
_ROW_PATH = "row"


class ImportFileMalformed(BadRequest):
    """The body is not a readable CSV file (encoding, quoting): 400, nothing was queued."""

    code = "malformed-csv"
    title = "The body is not a readable UTF-8 CSV file"


class ImportFileInvalid(InvalidInput):
    """The file's header is wrong or it has no rows: 422, nothing was queued."""

    code = "invalid-import-file"
    title = "The import file is not valid"


class ImportTooLarge(TooLarge):
    code = "import-too-large"
    title = "The import file has too many rows"


class ImporterNotAllowed(Forbidden):
    """The account that submitted an import may no longer write products (checked at each run)."""

    code = "importer-not-allowed"
    title = "The importer may no longer import products"


@dataclass(frozen=True, slots=True)
class CsvRecord:
    line: int  # the physical line the record starts on (the header is line 1)
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ImportFile:
    """A syntactically sound file: its column positions and its data records."""

    positions: dict[str, int]
    records: tuple[CsvRecord, ...]


@dataclass(frozen=True, slots=True)
class ImportRow:
    """A row every rule accepted, ready to become (or update) a product."""

    line: int
    sku: str
    name: str
    description: str
    category: str
    price: Money
    stock: int


@dataclass(frozen=True, slots=True)
class Reason:
    column: str  # a column name, or "row" for the record as a whole
    message: str


@dataclass(frozen=True, slots=True)
class RejectedRow:
    line: int
    sku: str | None
    reasons: tuple[Reason, ...]


@dataclass(frozen=True, slots=True)
class ValidatedImport:
    rows: tuple[ImportRow, ...]
    rejected: tuple[RejectedRow, ...]

    @property
    def total(self) -> int:
        return len(self.rows) + len(self.rejected)


def decode(body: bytes) -> str:
    """UTF-8 text (a leading byte-order mark is dropped); refuses empty and undecodable bodies."""
    if not body.strip():
        raise ImportFileMalformed("the body is empty; send a CSV file with a header row")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ImportFileMalformed(f"the body is not UTF-8 (byte {exc.start})") from None
    if "\x00" in text:
        # Never text, and PostgreSQL cannot store it: refused before the file is queued.
        raise ImportFileMalformed(f"the body holds a NUL character (at {text.index(chr(0))})")
    return text.removeprefix("\ufeff")


def read_import(text: str, max_rows: int = MAX_ROWS) -> ImportFile:
    """The header and records of ``text``; refuses bad CSV, a wrong header and too many rows."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[CsvRecord] = []
    header: list[str] | None = None
    try:
        while True:
            start = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                break
            if not fields or fields == [""]:
                continue  # blank lines carry nothing
            if header is None:
                _check_width(fields)
                header = fields
                continue
            records.append(CsvRecord(start, tuple(fields)))
            if len(records) > max_rows:
                raise ImportTooLarge(f"send at most {max_rows} rows per file")
    except csv.Error as exc:
        raise ImportFileMalformed(f"line {reader.line_num}: {exc}") from None
    if header is None:
        raise ImportFileInvalid(
            "the file has no header row",
            [FieldIssue(("body", "header"), "a header row naming the columns is required")],
        )
    positions = _positions(header)
    if not records:
        raise ImportFileInvalid(
            "the file has a header but no rows", [FieldIssue(("body",), "no rows to import")]
        )
    return ImportFile(positions, tuple(records))


def _check_width(header: Sequence[str]) -> None:
    if len(header) > MAX_COLUMNS:
        raise ImportFileInvalid(
            f"the header has {len(header)} columns; at most {MAX_COLUMNS} are allowed",
            [FieldIssue(("body", "header"), f"at most {MAX_COLUMNS} columns")],
        )


def _positions(header: Sequence[str]) -> dict[str, int]:
    issues: list[FieldIssue] = []
    positions: dict[str, int] = {}
    for index, raw in enumerate(header):
        name = raw.strip()
        if name not in COLUMNS:
            issues.append(FieldIssue(("body", "header", index), f"unknown column {_short(name)!r}"))
        elif name in positions:
            issues.append(FieldIssue(("body", "header", index), f"column {name!r} repeated"))
        else:
            positions[name] = index
    for name in COLUMNS:
        if name not in positions:
            issues.append(FieldIssue(("body", "header"), f"missing column {name!r}"))
    if issues:
        raise ImportFileInvalid(
            f"the header must name exactly these columns: {', '.join(COLUMNS)}", capped(issues)
        )
    return positions


def _short(name: str) -> str:
    # A field may be 128 KiB long; an answer quotes only enough of it to find it.
    return name if len(name) <= 40 else name[:40] + "…"


def capped(issues: list[FieldIssue]) -> list[FieldIssue]:
    """At most ``MAX_ISSUES`` issues: the first ones, then one that counts the rest."""
    if len(issues) <= MAX_ISSUES:
        return issues
    hidden = len(issues) - (MAX_ISSUES - 1)
    return [*issues[: MAX_ISSUES - 1], FieldIssue(("body",), f"{hidden} more problems not listed")]


def validate_rows(file: ImportFile) -> ValidatedImport:
    """Every record checked; the first row with a given SKU claims it, later ones are refused."""
    rows: list[ImportRow] = []
    rejected: list[RejectedRow] = []
    first_line: dict[str, int] = {}
    for record in file.records:
        outcome = _validate(record, file.positions)
        sku = outcome.sku if isinstance(outcome, ImportRow) else outcome.valid_sku
        if sku is not None:
            if sku in first_line:
                reason = Reason("sku", f"duplicate of line {first_line[sku]} in this file")
                reasons = outcome.reasons if isinstance(outcome, _Refused) else ()
                rejected.append(RejectedRow(record.line, sku, (reason, *reasons)))
                continue
            first_line[sku] = record.line
        if isinstance(outcome, ImportRow):
            rows.append(outcome)
        else:
            rejected.append(RejectedRow(record.line, outcome.shown_sku, outcome.reasons))
    return ValidatedImport(tuple(rows), tuple(rejected))


@dataclass(frozen=True, slots=True)
class _Refused:
    valid_sku: str | None  # set when only other columns are wrong: it still claims the SKU
    shown_sku: str | None  # what the file says, for people to find the row
    reasons: tuple[Reason, ...]


T = TypeVar("T")
# Money checks its amount before its currency and stops at the first problem; each half is
# checked on its own (with a known-good other half) so a row with both wrong reports both.
_A_CURRENCY = "EUR"


def _validate(record: CsvRecord, positions: dict[str, int]) -> ImportRow | _Refused:
    raw_sku = _field(record, positions["sku"])
    shown = raw_sku[:100] if raw_sku else None
    if len(record.fields) != len(COLUMNS):
        found = f"expected {len(COLUMNS)} fields, found {len(record.fields)}"
        return _Refused(None, shown, (Reason(_ROW_PATH, found),))
    raw = {name: record.fields[index] for name, index in positions.items()}
    reasons: list[Reason] = []

    def check(column: str, rule: Callable[[], T]) -> T | None:
        try:
            return rule()
        except InvalidInput as exc:
            reasons.append(Reason(column, exc.issues[0].message if exc.issues else exc.detail))
        except ValueError as exc:  # the text rules and whole numbers
            reasons.append(Reason(column, str(exc)))
        return None

    sku = check("sku", lambda: validate_sku(raw["sku"]))
    name = check("name", lambda: validate_name(single_line(raw["name"])))
    description = check("description", lambda: validate_description(multi_line(raw["description"])))
    category = check("category", lambda: validate_category(single_line(raw["category"])))
    amount = check("price_amount", lambda: Money(_integer(raw["price_amount"]), _A_CURRENCY).amount)
    currency = check("currency", lambda: Money(0, raw["currency"]).currency)
    stock = check("stock", lambda: validate_stock(_integer(raw["stock"])))
    if (
        reasons
        or sku is None
        or name is None
        or description is None
        or category is None
        or amount is None
        or currency is None
        or stock is None
    ):
        return _Refused(sku, shown, tuple(reasons))
    return ImportRow(record.line, sku, name, description, category, Money(amount, currency), stock)


def _integer(value: str) -> int:
    if not _INTEGER.fullmatch(value):
        raise ValueError("must be a whole number")
    return int(value)


def _field(record: CsvRecord, index: int) -> str:
    return record.fields[index] if index < len(record.fields) else ""


class RowOutcome(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class Applied:
    """What a valid row does to the catalog; ``write`` is None when nothing needs writing."""

    outcome: RowOutcome
    write: Product | None


def apply_row(
    row: ImportRow,
    existing: Product | None,
    *,
    tenant_id: UUID,
    importer_id: UUID,
    as_of: datetime,
    new_id: Callable[[], UUID],
) -> Applied | RejectedRow:
    """Upsert by SKU: insert a new product, update the importer's own, refuse anyone else's.

    ``as_of`` is the import's submission time, stamped on every product it writes. That makes a
    second run of the same job (a crash between batches) report what the first run did: a row
    whose product already matches and carries this import's stamp was written by it.
    """
    if existing is None:
        product = Product(
            id=new_id(),
            tenant_id=tenant_id,
            seller_id=importer_id,
            sku=row.sku,
            name=row.name,
            description=row.description,
            category=row.category,
            price=row.price,
            stock=row.stock,
            status=ProductStatus.ACTIVE,
            version=1,
            created_at=as_of,
            updated_at=as_of,
        )
        return Applied(RowOutcome.CREATED, product)
    if existing.seller_id != importer_id:
        return RejectedRow(row.line, row.sku, (Reason("sku", "belongs to another seller"),))
    fields: dict[str, object] = {
        "name": row.name,
        "description": row.description,
        "category": row.category,
        "price": row.price,
        "stock": row.stock,
    }
    if any(getattr(existing, k) != v for k, v in fields.items()):
        updated = existing.changed(as_of, version=existing.version + 1, **fields)
        return Applied(RowOutcome.UPDATED, updated)
    if existing.version == 1 and existing.created_at == as_of:
        return Applied(RowOutcome.CREATED, None)
    if existing.updated_at == as_of:
        return Applied(RowOutcome.UPDATED, None)
    return Applied(RowOutcome.UNCHANGED, None)
