"""The import file's rules, without I/O: the header, each row's fields, duplicates, upserts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from impextech.catalog.domain.imports import (
    COLUMNS,
    Applied,
    ImportFileInvalid,
    ImportFileMalformed,
    ImportRow,
    ImportTooLarge,
    Reason,
    RejectedRow,
    RowOutcome,
    apply_row,
    decode,
    read_import,
    validate_rows,
)
from impextech.catalog.domain.model import Product, ProductStatus
from impextech.kernel.domain.money import Money

HEADER = ",".join(COLUMNS)
GOOD = "TENT-2P,Blue Tent,Sleeps two,outdoor,12999,EUR,3"
TENANT = uuid.uuid4()
ME = uuid.uuid4()
SOMEONE_ELSE = uuid.uuid4()
SUBMITTED = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def check(*lines: str) -> tuple[list[ImportRow], list[RejectedRow]]:
    result = validate_rows(read_import("\n".join((HEADER, *lines)) + "\n"))
    return list(result.rows), list(result.rejected)


def reasons_of(line: str) -> list[tuple[str, str]]:
    rows, rejected = check(line)
    assert rows == []
    assert len(rejected) == 1
    return [(r.column, r.message) for r in rejected[0].reasons]


def test_a_good_row_becomes_an_import_row_with_its_line() -> None:
    rows, rejected = check(GOOD)
    assert rejected == []
    assert rows == [
        ImportRow(2, "TENT-2P", "Blue Tent", "Sleeps two", "outdoor", Money(12999, "EUR"), 3)
    ]


def test_columns_may_come_in_any_order_and_quoted_fields_span_lines() -> None:
    text = (
        "stock,currency,price_amount,category,description,name,sku\r\n"
        '7,JPY,500,kitchen,"Two lines,\nwith a comma",  Mug  ,MUG-1\r\n'
    )
    result = validate_rows(read_import(text))
    assert result.rows == (
        ImportRow(2, "MUG-1", "Mug", "Two lines,\nwith a comma", "kitchen", Money(500, "JPY"), 7),
    )


@pytest.mark.parametrize(
    ("price", "message"),
    [
        ("12.50", "must be a whole number"),
        ("1e3", "must be a whole number"),
        ("", "must be a whole number"),
        ("abc", "must be a whole number"),
        ("-1", "must be between 0 and 1000000000000"),
        ("1000000000001", "must be between 0 and 1000000000000"),
        ("9" * 25, "must be a whole number"),
        ('"12\n"', "must be a whole number"),
        ("١٢", "must be a whole number"),  # Arabic-Indic digits: int() would take them
    ],
)
def test_bad_prices_are_refused(price: str, message: str) -> None:
    line = f"A-1,Tent,,outdoor,{price},EUR,3"
    assert reasons_of(line) == [("price_amount", message)]


@pytest.mark.parametrize("currency", ["eur", "XXX", "EURO", "", " EUR"])
def test_bad_currencies_are_refused(currency: str) -> None:
    assert reasons_of(f"A-1,Tent,,outdoor,100,{currency},3") == [
        ("currency", "must be an ISO 4217 code such as EUR")
    ]


@pytest.mark.parametrize("sku", ["", "-lead", "has space", "a/b", "x" * 65, "é1"])
def test_bad_skus_are_refused(sku: str) -> None:
    (reason,) = reasons_of(f"{sku},Tent,,outdoor,100,EUR,3")
    assert reason[0] == "sku"
    assert "1-64 letters" in reason[1]


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("name", "Tent\x07"),
        ("name", "Bid\u202eevil"),
        ("category", "out\x1bdoor"),
        ("description", "bell\x07"),
        ("name", "\x85next"),
    ],
)
def test_control_characters_are_refused(column: str, value: str) -> None:
    fields = dict(zip(COLUMNS, GOOD.split(","), strict=True))
    fields[column] = value
    line = ",".join(fields[c] for c in COLUMNS)
    assert reasons_of(line) == [
        (column, "contains control, surrogate or bidirectional-override characters")
    ]


def test_a_description_may_hold_newlines_and_tabs() -> None:
    rows, _ = check('A-1,Tent,"one\ttab\nand a line",outdoor,100,EUR,3')
    assert rows[0].description == "one\ttab\nand a line"


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("name", "n" * 201, "1-200 characters"),
        ("category", "c" * 81, "1-80 characters"),
        ("description", "d" * 10_001, "at most 10000 characters"),
        ("name", "   ", "must not be blank"),
        ("category", "", "must not be blank"),
    ],
)
def test_too_long_or_blank_text_is_refused(column: str, value: str, message: str) -> None:
    fields = dict(zip(COLUMNS, GOOD.split(","), strict=True))
    fields[column] = value
    assert reasons_of(",".join(fields[c] for c in COLUMNS)) == [(column, message)]


def test_names_are_stripped_before_their_length_is_checked() -> None:
    rows, _ = check(f"A-1, {'n' * 200} ,,outdoor,100,EUR,3")
    assert rows[0].name == "n" * 200


@pytest.mark.parametrize(
    ("stock", "message"),
    [
        ("-1", "an integer between 0 and 1000000000"),
        ("1000000001", "an integer between 0 and 1000000000"),
        ("2.0", "must be a whole number"),
        ("", "must be a whole number"),
    ],
)
def test_bad_stock_is_refused(stock: str, message: str) -> None:
    assert reasons_of(f"A-1,Tent,,outdoor,100,EUR,{stock}") == [("stock", message)]


def test_every_problem_of_a_row_is_reported_at_once() -> None:
    assert reasons_of("bad sku,,x,,1.5,eur,-3") == [
        ("sku", "1-64 letters, digits, '.', '_' or '-', starting alphanumeric"),
        ("name", "must not be blank"),
        ("category", "must not be blank"),
        ("price_amount", "must be a whole number"),
        ("currency", "must be an ISO 4217 code such as EUR"),
        ("stock", "an integer between 0 and 1000000000"),
    ]


def test_a_row_with_the_wrong_number_of_fields_is_refused() -> None:
    rows, rejected = check("A-1,Tent,outdoor", GOOD + ",extra")
    assert rows == []
    assert rejected == [
        RejectedRow(2, "A-1", (Reason("row", "expected 7 fields, found 3"),)),
        RejectedRow(3, "TENT-2P", (Reason("row", "expected 7 fields, found 8"),)),
    ]


def test_the_first_row_with_a_sku_wins_and_later_ones_are_duplicates() -> None:
    rows, rejected = check(
        "A-1,First,,misc,100,EUR,1",
        "B-1,Other,,misc,100,EUR,1",
        "A-1,Second,,misc,200,EUR,1",
        "A-1,Third,,misc,-5,EUR,1",
    )
    assert [(r.line, r.name) for r in rows] == [(2, "First"), (3, "Other")]
    assert rejected == [
        RejectedRow(4, "A-1", (Reason("sku", "duplicate of line 2 in this file"),)),
        RejectedRow(
            5,
            "A-1",
            (
                Reason("sku", "duplicate of line 2 in this file"),
                Reason("price_amount", "must be between 0 and 1000000000000"),
            ),
        ),
    ]


def test_an_invalid_first_row_still_claims_its_sku() -> None:
    rows, rejected = check("A-1,First,,misc,oops,EUR,1", "A-1,Second,,misc,100,EUR,1")
    assert rows == []
    assert [(r.line, r.reasons[0]) for r in rejected] == [
        (2, Reason("price_amount", "must be a whole number")),
        (3, Reason("sku", "duplicate of line 2 in this file")),
    ]


def test_blank_lines_are_skipped_and_line_numbers_stay_physical() -> None:
    rows, _ = check("", GOOD, "", "")
    assert [r.line for r in rows] == [3]


@pytest.mark.parametrize(
    ("header", "messages"),
    [
        ("sku,name,description,category,price_amount,currency", ["missing column 'stock'"]),
        (HEADER + ",colour", ["unknown column 'colour'"]),
        (HEADER + ",sku", ["column 'sku' repeated"]),
        ("SKU" + HEADER[3:], ["unknown column 'SKU'", "missing column 'sku'"]),
    ],
)
def test_a_wrong_header_is_refused_before_any_row(header: str, messages: list[str]) -> None:
    with pytest.raises(ImportFileInvalid) as caught:
        read_import(f"{header}\n{GOOD}\n")
    assert [issue.message for issue in caught.value.issues] == messages


def test_a_file_without_rows_or_header_is_refused() -> None:
    with pytest.raises(ImportFileInvalid, match="no rows"):
        read_import(HEADER + "\n\n")
    with pytest.raises(ImportFileInvalid, match="no header"):
        read_import("\n\n")


def test_broken_csv_syntax_is_malformed() -> None:
    with pytest.raises(ImportFileMalformed, match="line 2"):
        read_import(f'{HEADER}\nA-1,"unterminated,,misc,1,EUR,1\n')


def test_too_many_rows_are_refused() -> None:
    text = HEADER + "\n" + "".join(f"S-{i},N,,c,1,EUR,1\n" for i in range(4))
    assert len(read_import(text, max_rows=4).records) == 4
    with pytest.raises(ImportTooLarge):
        read_import(text, max_rows=3)


def test_decode_refuses_empty_and_non_utf8_bodies_and_drops_a_bom() -> None:
    with pytest.raises(ImportFileMalformed, match="empty"):
        decode(b"  \n")
    with pytest.raises(ImportFileMalformed, match="not UTF-8"):
        decode("sku,name\nA,Caf\xe9".encode("latin-1"))
    with pytest.raises(ImportFileMalformed, match="NUL character"):
        decode(b"sku,name\nA,Te\x00nt")
    assert decode("\ufeffsku".encode()) == "sku"


# ---------------------------------------------------------------------------------------------
# Upsert decisions


def product(seller: uuid.UUID = ME, **fields: object) -> Product:
    base: dict[str, object] = {
        "id": uuid.uuid4(),
        "tenant_id": TENANT,
        "seller_id": seller,
        "sku": "TENT-2P",
        "name": "Blue Tent",
        "description": "Sleeps two",
        "category": "outdoor",
        "price": Money(12999, "EUR"),
        "stock": 3,
        "status": ProductStatus.ACTIVE,
        "version": 4,
        "created_at": SUBMITTED - timedelta(days=3),
        "updated_at": SUBMITTED - timedelta(days=1),
        **fields,
    }
    return Product(**base)  # type: ignore[arg-type]


ROW = ImportRow(2, "TENT-2P", "Blue Tent", "Sleeps two", "outdoor", Money(12999, "EUR"), 3)
NEW_ID = uuid.uuid4()


def apply(existing: Product | None, row: ImportRow = ROW) -> Applied | RejectedRow:
    return apply_row(
        row, existing, tenant_id=TENANT, importer_id=ME, as_of=SUBMITTED, new_id=lambda: NEW_ID
    )


def test_a_new_sku_is_created_for_the_importer_stamped_with_the_submission_time() -> None:
    outcome = apply(None)
    assert isinstance(outcome, Applied)
    assert outcome.outcome is RowOutcome.CREATED
    assert outcome.write == Product(
        id=NEW_ID,
        tenant_id=TENANT,
        seller_id=ME,
        sku="TENT-2P",
        name="Blue Tent",
        description="Sleeps two",
        category="outdoor",
        price=Money(12999, "EUR"),
        stock=3,
        status=ProductStatus.ACTIVE,
        version=1,
        created_at=SUBMITTED,
        updated_at=SUBMITTED,
    )


def test_a_changed_own_product_is_updated_with_a_new_version() -> None:
    existing = product(stock=9, status=ProductStatus.ARCHIVED)
    outcome = apply(existing)
    assert isinstance(outcome, Applied)
    assert outcome.outcome is RowOutcome.UPDATED
    assert outcome.write == existing.changed(SUBMITTED, version=5, stock=3)


def test_an_identical_own_product_is_left_alone() -> None:
    assert apply(product()) == Applied(RowOutcome.UNCHANGED, None)


def test_another_sellers_sku_is_refused() -> None:
    assert apply(product(seller=SOMEONE_ELSE, stock=99)) == RejectedRow(
        2, "TENT-2P", (Reason("sku", "belongs to another seller"),)
    )


def test_a_second_run_of_the_same_import_reports_what_the_first_did() -> None:
    created = apply(None)
    assert isinstance(created, Applied)
    assert created.write is not None
    assert apply(created.write) == Applied(RowOutcome.CREATED, None)
    updated = apply(product(stock=9))
    assert isinstance(updated, Applied)
    assert updated.write is not None
    assert apply(updated.write) == Applied(RowOutcome.UPDATED, None)


REFUSALS = (ImportFileMalformed, ImportFileInvalid, ImportTooLarge)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_body_is_refused_with_a_known_error_or_read(body: bytes) -> None:
    try:
        file = read_import(decode(body))
    except REFUSALS:
        return
    validate_rows(file)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=60), max_size=8))
def test_any_text_under_a_good_header_yields_rows_or_reasons(lines: list[str]) -> None:
    try:
        file = read_import("\n".join((HEADER, *lines)))
    except REFUSALS:
        return
    result = validate_rows(file)
    assert result.total == len(file.records)
    for rejected in result.rejected:
        assert rejected.reasons
    for row in result.rows:
        assert "\x00" not in row.name + row.description + row.category
