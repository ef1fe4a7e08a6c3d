"""The first tenant wall: every statement on a tenant-owned table names ``tenant_id`` itself.

Row-level security is the second wall; a statement that relies on it alone returns or changes
another tenant's rows the day a connection carries the wrong setting (or none is enforced). This
reads every SQL text in the source, the way the code spells it, and checks each statement that
reads or changes a tenant-owned table restricts ``tenant_id`` in its WHERE or ON.

Interpolated parts count as unknown text: a statement whose tenant predicate would only appear at
run time (``WHERE {clauses}``) fails, so the tenant predicate is always written literally.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "impextech"
MIGRATIONS = SRC / "platform" / "migrations" / "versions"

_STATEMENT = re.compile(r"^\s*(SELECT|UPDATE|DELETE|INSERT|WITH)\b", re.IGNORECASE)
_TABLE_REF = re.compile(r"\b(FROM|JOIN|UPDATE|INTO)\s+([a-z_][a-z0-9_]*)", re.IGNORECASE)
_PREDICATE_START = re.compile(r"\b(WHERE|ON(?!\s+CONFLICT))\b", re.IGNORECASE)
_RETURNING = re.compile(r"\bRETURNING\b.*$", re.IGNORECASE | re.DOTALL)
_TENANT = re.compile(r"\btenant_id\b", re.IGNORECASE)
_UNKNOWN = "\x00"  # stands for an interpolated expression: never matches a column name


def tenant_tables() -> frozenset[str]:
    """Every table the migrations give a ``tenant_id`` column."""
    found: set[str] = set()
    for path in MIGRATIONS.glob("*.py"):
        text = path.read_text()
        for name, body in re.findall(
            r"CREATE TABLE\s+(\w+)\s*\((.*?)\n\s*\)", text, re.IGNORECASE | re.DOTALL
        ):
            if re.search(r"^\s*tenant_id\s", body, re.MULTILINE):
                found.add(name.lower())
        for name in re.findall(
            r"ALTER TABLE\s+(\w+)\s+ADD COLUMN\s+tenant_id\b", text, re.IGNORECASE
        ):
            found.add(name.lower())
    return frozenset(found)


def _module_name(path: Path) -> str:
    return ".".join(("impextech", *path.relative_to(SRC).with_suffix("").parts))


def _text(node: ast.expr, names: dict[str, str]) -> str | None:
    """A string literal's text; an interpolated known constant counts as its value."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for part in node.values:
            if isinstance(part, ast.Constant):
                parts.append(str(part.value))
            elif (
                isinstance(part, ast.FormattedValue)
                and isinstance(part.value, ast.Name)
                and part.value.id in names
            ):
                parts.append(names[part.value.id])
            else:
                parts.append(_UNKNOWN)
        return "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left, names), _text(node.right, names)
        if left is not None or right is not None:
            return (left or _UNKNOWN) + (right or _UNKNOWN)
        return None
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    return None


def _constants(tree: ast.Module, imported: dict[str, str]) -> dict[str, str]:
    """The module's top-level string constants (``COLUMNS = "..."``), in order of definition."""
    names = dict(imported)
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign | ast.AnnAssign) and stmt.value is not None:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            text = _text(stmt.value, names)
            if text is not None and len(targets) == 1 and isinstance(targets[0], ast.Name):
                names[targets[0].id] = text
    return names


def _module_constants() -> dict[str, dict[str, str]]:
    trees = {_module_name(p): ast.parse(p.read_text()) for p in _modules()}
    resolved: dict[str, dict[str, str]] = {}

    def constants_of(module: str) -> dict[str, str]:
        if module not in resolved:
            resolved[module] = {}  # a cycle resolves to nothing rather than looping
            imported = {}
            for stmt in trees[module].body:
                if isinstance(stmt, ast.ImportFrom) and stmt.module in trees:
                    theirs = constants_of(stmt.module)
                    for alias in stmt.names:
                        if alias.name in theirs:
                            imported[alias.asname or alias.name] = theirs[alias.name]
            resolved[module] = _constants(trees[module], imported)
        return resolved[module]

    return {module: constants_of(module) for module in trees}


def sql_texts(source: str, names: dict[str, str] | None = None) -> list[tuple[int, str]]:
    """Each string literal that starts a SQL statement, with its line (f-strings included)."""
    tree = ast.parse(source)
    # Judge whole statements only: not the pieces an f-string or a ``+`` is made of, nor a
    # module constant that other statements use as their first half.
    inner: set[int] = set()
    fragments: set[str] = set()
    for node in ast.walk(tree):
        parts: list[ast.expr] = []
        if isinstance(node, ast.JoinedStr):
            parts = [p.value if isinstance(p, ast.FormattedValue) else p for p in node.values]
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            parts = [node.left, node.right]
        inner.update(id(part) for part in parts)
        fragments.update(part.id for part in parts if isinstance(part, ast.Name))
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id in fragments for t in stmt.targets
        ):
            inner.add(id(stmt.value))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant | ast.JoinedStr | ast.BinOp) and id(node) not in inner:
            text = _text(node, names or {})
            if text is not None and _STATEMENT.match(text):
                found.append((node.lineno, " ".join(text.split())))
    return found


def _statements() -> list[tuple[str, int, str]]:
    constants = _module_constants()
    return [
        (str(path.relative_to(SRC)), line, text)
        for path in _modules()
        for line, text in sql_texts(path.read_text(), constants[_module_name(path)])
    ]


def missing_tenant_predicate(statement: str, tables: frozenset[str]) -> list[str]:
    """The tenant-owned tables this statement touches without a ``tenant_id`` predicate."""
    refs = [
        (keyword.upper(), table.lower())
        for keyword, table in _TABLE_REF.findall(statement)
        if table.lower() in tables
    ]
    read_or_changed = [table for keyword, table in refs if keyword != "INTO"]
    inserted = [table for keyword, table in refs if keyword == "INTO"]
    missing: list[str] = []
    start = _PREDICATE_START.search(statement)
    predicates = _RETURNING.sub("", statement[start.start() :]) if start else ""
    if len(_TENANT.findall(predicates)) < len(read_or_changed):
        missing.extend(read_or_changed)
    for table in inserted:
        columns = re.search(rf"\bINTO\s+{table}\s*\(([^)]*)\)", statement, re.IGNORECASE)
        if columns is None or not _TENANT.search(columns.group(1)):
            missing.append(table)
    return missing


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if MIGRATIONS.parent not in p.parents)


def test_the_tenant_owned_tables_come_from_the_migrations() -> None:
    assert {"users", "auth_sessions", "refresh_tokens", "products", "jobs"} <= tenant_tables()
    assert "tenants" not in tenant_tables()  # the registry of marketplaces is global


def test_the_scan_finds_the_statements_it_must_judge() -> None:
    # Guards the scan itself: if it stopped finding statements, the real check would pass empty.
    statements = [text for _, _, text in _statements()]
    assert len(statements) >= 40
    touching = [s for s in statements if _TABLE_REF.search(s)]
    assert any("FROM jobs" in s for s in touching)
    assert any("UPDATE products" in s for s in touching)


@pytest.mark.parametrize(
    ("statement", "missing"),
    [
        ("SELECT a, tenant_id FROM jobs WHERE id = %s", ["jobs"]),
        ("UPDATE jobs SET state = 'dead' WHERE id = %s RETURNING tenant_id", ["jobs"]),
        ("DELETE FROM refresh_tokens WHERE session_id = %s", ["refresh_tokens"]),
        # An interpolated WHERE, as the scan sees it: unknown text, so no tenant predicate.
        ("SELECT \x00 FROM products WHERE \x00 ORDER BY id", ["products"]),
        (
            "SELECT p.id FROM products p JOIN users u ON u.id = p.seller_id WHERE p.tenant_id = %s",
            ["products", "users"],
        ),
        ("UPDATE jobs SET x = q.x FROM unnest(%s) q(id, x) WHERE jobs.id = q.id", ["jobs"]),
        ("INSERT INTO products (id, sku) VALUES (%s, %s)", ["products"]),
        ("SELECT a FROM jobs WHERE tenant_id = %s AND id = %s", []),
        ("SELECT id FROM tenants WHERE slug = %s", []),
        ("INSERT INTO jobs (tenant_id, id) VALUES (%s, %s) ON CONFLICT (tenant_id, id)", []),
        (
            "SELECT p.id FROM products p JOIN users u"
            " ON u.tenant_id = p.tenant_id AND u.id = p.seller_id WHERE p.tenant_id = %s",
            [],
        ),
    ],
)
def test_the_check_tells_a_walled_statement_from_an_open_one(
    statement: str, missing: list[str]
) -> None:
    assert missing_tenant_predicate(statement, tenant_tables()) == missing


def test_every_statement_on_a_tenant_owned_table_names_the_tenant() -> None:
    tables = tenant_tables()
    open_statements = [
        f"{path}:{line}: {', '.join(missing)}: {text}"
        for path, line, text in _statements()
        if (missing := missing_tenant_predicate(text, tables))
    ]
    assert open_statements == []
