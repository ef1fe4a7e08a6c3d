"""The import file's rules, without I/O: the header, each row's fields, duplicates, upserts."""

from __future__ import annotations

import csv
import io
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, event, given, settings, target
from hypothesis import strategies as st

from impextech.catalog.domain.imports import (
    COLUMNS,
    MAX_COLUMNS,
    MAX_ISSUES,
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


def test_a_header_wider_than_the_cap_is_refused_whole_with_one_issue() -> None:
    with pytest.raises(ImportFileInvalid) as caught:
        read_import(",".join(["x"] * (MAX_COLUMNS + 1)) + "\n" + GOOD + "\n")
    assert caught.value.detail == (
        f"the header has {MAX_COLUMNS + 1} columns; at most {MAX_COLUMNS} are allowed"
    )
    assert [(i.path, i.message) for i in caught.value.issues] == [
        (("body", "header"), f"at most {MAX_COLUMNS} columns")
    ]


def test_header_problems_are_listed_up_to_the_cap_and_the_rest_counted() -> None:
    # At the column cap the header is read, and each problem found: 32 unknown names and
    # 7 missing ones; the first 19 are listed and the last issue counts the other 20.
    header = ",".join(f"colour{i}" for i in range(MAX_COLUMNS))
    with pytest.raises(ImportFileInvalid) as caught:
        read_import(f"{header}\n{GOOD}\n")
    messages = [issue.message for issue in caught.value.issues]
    assert len(messages) == MAX_ISSUES == 20
    assert messages[:19] == [f"unknown column 'colour{i}'" for i in range(19)]
    assert messages[19] == "20 more problems not listed"


def test_a_long_unknown_column_name_is_quoted_only_in_part() -> None:
    with pytest.raises(ImportFileInvalid) as caught:
        read_import(HEADER + "," + "y" * 100_000 + "\n" + GOOD + ",x\n")
    assert [issue.message for issue in caught.value.issues] == [
        "unknown column '" + "y" * 40 + "…'"
    ]


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
def test_any_text_under_a_good_header_is_read_or_refused_whole(lines: list[str]) -> None:
    # Arbitrary text almost never makes a valid row: this checks robustness and bookkeeping
    # only; the exact outcome of good and bad rows is the property test below.
    try:
        file = read_import("\n".join((HEADER, *lines)))
    except REFUSALS:
        return
    result = validate_rows(file)
    assert result.total == len(file.records)
    for rejected in result.rejected:
        assert rejected.reasons


# ---------------------------------------------------------------------------------------------
# Files of good and spoiled rows, written with a real CSV writer, checked row by row against an
# oracle that knows what each row should become.


def _nfc_stable(value: str) -> bool:
    return unicodedata.normalize("NFC", value) == value


# Letters, digits, punctuation (commas and quotes included) and spaces: no controls, marks or
# format characters, so each value is what the importer must keep (after stripping names).
_PRINTABLE = st.characters(categories=("L", "N", "P", "Zs"))
_SKUS = st.one_of(
    st.sampled_from(["TENT-2P", "MUG-1", "a.b_c"]),  # repeats: the first row wins the SKU
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", fullmatch=True),
)


def _label(most: int) -> st.SearchStrategy[str]:
    return st.text(_PRINTABLE, min_size=1, max_size=most).filter(
        lambda v: v == v.strip() and _nfc_stable(v)
    )


@dataclass(frozen=True)
class GoodRow:
    sku: str
    name: str
    description: str
    category: str
    amount: int
    currency: str
    stock: int
    padding: str  # around the name and category, which the importer strips
    amount_text: str
    stock_text: str

    def fields(self) -> dict[str, str]:
        return {
            "sku": self.sku,
            "name": self.padding + self.name + self.padding,
            "description": self.description,
            "category": self.padding + self.category,
            "price_amount": self.amount_text,
            "currency": self.currency,
            "stock": self.stock_text,
        }


def _number_text(value: int) -> st.SearchStrategy[str]:
    return st.sampled_from([str(value), f"+{value}", f"00{value}"])


@st.composite
def good_rows(draw: st.DrawFn) -> GoodRow:
    amount = draw(st.integers(0, 10**12))
    stock = draw(st.integers(0, 10**9))
    return GoodRow(
        sku=draw(_SKUS),
        name=draw(_label(200)),
        description=draw(
            st.text(st.one_of(_PRINTABLE, st.sampled_from("\n\t")), max_size=80).filter(_nfc_stable)
        ),
        category=draw(_label(80)),
        amount=amount,
        currency=draw(st.sampled_from(["EUR", "USD", "JPY", "BHD"])),
        stock=stock,
        padding=draw(st.sampled_from(["", " ", "  "])),
        amount_text=draw(_number_text(amount)),
        stock_text=draw(_number_text(stock)),
    )


# (column, bad value): each refused for that column alone.
SPOILERS = [
    ("sku", "has space"),
    ("sku", "-lead"),
    ("name", "   "),
    ("name", "n" * 201),
    ("name", "Tent\x07"),
    ("description", "bell\x07"),
    ("category", ""),
    ("category", "c" * 81),
    ("price_amount", "12.50"),
    ("price_amount", "1000000000001"),
    ("currency", "eur"),
    ("stock", "-1"),
    ("stock", "2.0"),
]


@dataclass(frozen=True)
class SpoiledRow:
    good: GoodRow
    column: str
    value: str

    def fields(self) -> dict[str, str]:
        return {**self.good.fields(), self.column: self.value}


@dataclass(frozen=True)
class ShortRow:
    good: GoodRow


RowSpec = GoodRow | SpoiledRow | ShortRow


def row_specs() -> st.SearchStrategy[RowSpec]:
    spoiled = st.builds(
        lambda good, spoiler: SpoiledRow(good, *spoiler), good_rows(), st.sampled_from(SPOILERS)
    )
    return st.one_of(good_rows(), spoiled, st.builds(ShortRow, good_rows()))


def write_file(specs: list[RowSpec], order: list[str]) -> tuple[str, list[int]]:
    """The CSV text (columns in ``order``) and the line each record starts on."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(order)
    starts: list[int] = []
    for spec in specs:
        starts.append(out.getvalue().count("\n") + 1)
        if isinstance(spec, ShortRow):
            fields = spec.good.fields()
            writer.writerow([fields[c] for c in order][:3])
        else:
            fields = spec.fields()
            writer.writerow([fields[c] for c in order])
    return out.getvalue(), starts


def expected(
    specs: list[RowSpec], starts: list[int], order: list[str]
) -> tuple[list[ImportRow], list[tuple[int, str | None, list[str]]]]:
    """The oracle: the accepted rows exactly, and each refusal's line, SKU and reasons (a
    duplicate by its message, any other reason by its column)."""
    rows: list[ImportRow] = []
    rejected: list[tuple[int, str | None, list[str]]] = []
    claimed: dict[str, int] = {}
    for spec, line in zip(specs, starts, strict=True):
        if isinstance(spec, ShortRow):
            # Three fields written: the SKU is shown only if its column came among them.
            shown = spec.good.sku if order.index("sku") < 3 else None
            rejected.append((line, shown, ["row"]))
            continue
        good = spec.good if isinstance(spec, SpoiledRow) else spec
        bad = [spec.column] if isinstance(spec, SpoiledRow) else []
        sku = spec.fields()["sku"]
        if bad != ["sku"]:
            if sku in claimed:
                rejected.append(
                    (line, sku, [f"duplicate of line {claimed[sku]} in this file", *bad])
                )
                continue
            claimed[sku] = line
        if bad:
            rejected.append((line, sku, bad))
            continue
        rows.append(
            ImportRow(
                line,
                good.sku,
                good.name,
                good.description,
                good.category,
                Money(good.amount, good.currency),
                good.stock,
            )
        )
    return rows, rejected


def _reasons(refusal: RejectedRow) -> list[str]:
    return [r.message if r.message.startswith("duplicate") else r.column for r in refusal.reasons]


def test_good_rows_are_accepted_exactly_and_spoiled_ones_refused_for_their_column() -> None:
    accepted_files: list[int] = []
    refused_files: list[int] = []

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(row_specs(), min_size=1, max_size=8), st.permutations(COLUMNS))
    def run(specs: list[RowSpec], order: list[str]) -> None:
        order = list(order)
        text, starts = write_file(specs, order)
        result = validate_rows(read_import(text))
        rows, rejected = expected(specs, starts, order)
        assert list(result.rows) == rows
        assert [(r.line, r.sku, _reasons(r)) for r in result.rejected] == rejected
        event(f"accepted rows in the file: {min(len(rows), 3)}{'+' if len(rows) >= 3 else ''}")
        target(float(len(rows)), label="accepted rows")
        (accepted_files if rows else refused_files).append(len(rows))

    run()
    # The point of the generator: accepted rows really occur, in most files, beside refusals.
    assert len(accepted_files) > len(refused_files) // 2, (accepted_files, refused_files)
    assert sum(accepted_files) >= 100
