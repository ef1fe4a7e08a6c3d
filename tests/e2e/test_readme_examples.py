"""Every curl example of README.md, run in order (with httpx) against `impextech serve` over the
demo data: each must succeed, and where the README shows an answer, the real one has its shape.

The examples are parsed out of the README itself, so editing an example edits this test. What
the README leaves to the reader is filled in the way a reader would: `<id>` is the product
just listed (or, under /users, the account just registered), `$ADMIN` is admin@acme.example's
access token, `$JOB` the job a CSV import starts, and after a logout the reader signs in again.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from impextech.kernel.contexts import Process
from impextech.kernel.db import Database
from impextech.platform import database
from impextech.platform.assembly import assemble
from impextech.platform.seed import DEMO_PASSWORD, seed_demo
from impextech.platform.settings import Settings
from tests.e2e.conftest import CLI, _wait_until_live, cli_env, free_port
from tests.support.pg import APP_ROLE, scratch_database, superuser_of

README = Path(__file__).resolve().parents[2] / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
VARIABLE = re.compile(r"\$\{?(\w+)\}?")
ASSIGNMENT = re.compile(r"^(\w+)=(.*)$", re.DOTALL)
LEADING_STATUS = re.compile(r"^#\s*(\d{3})\b")
IMPORT_CSV = (
    "sku,name,description,category,price_amount,currency,stock\n"
    "README-1,Readme Lamp,Bright,electronics,2599,EUR,3\n"
)


@dataclass
class Example:
    """One shell line of a README code block (continuations joined), with its comment."""

    command: str
    comment: str
    output: list[str] = field(default_factory=list)


def examples(text: str) -> Iterator[tuple[str, Example]]:
    """(language, example) for every command line of the shell blocks; ``# …`` lines that
    follow a command are the answer it shows."""
    for language, body in FENCE.findall(text):
        if language not in ("sh", "bash", "json"):
            continue
        if language == "json":
            yield language, Example(body.strip(), "")
            continue
        joined = re.sub(r"\\\n\s*", " ", body)
        last: Example | None = None
        for line in joined.splitlines():
            stripped = line.strip()
            if not stripped:
                last = None
                continue
            if stripped.startswith("#"):
                shown = stripped.lstrip("#").strip()
                # An answer shown under its command starts with "{"; other comments narrate.
                if last is not None and (last.output or shown.startswith("{")):
                    last.output.append(shown)
                else:
                    last = None
                continue
            command, comment = _split_comment(stripped)
            last = Example(command, comment)
            yield language, last


def _split_comment(line: str) -> tuple[str, str]:
    quote: str | None = None
    for i, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
            elif char == "\\" and quote == '"':
                continue
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].strip(), line[i:].strip()
    return line, ""


@dataclass
class Reader:
    """Someone following the README: the shell variables they hold and what they last made."""

    client: httpx.Client
    variables: dict[str, str] = field(default_factory=dict)
    login: list[str] | None = None
    product_id: str = ""
    user_id: str = ""
    ran: list[str] = field(default_factory=list)

    def expand(self, text: str) -> str:
        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            assert name in self.variables, f"the README uses ${name} before setting it"
            return self.variables[name]

        text = VARIABLE.sub(value, text)
        text = re.sub(r"(/products/)<id>", rf"\g<1>{self.product_id}", text)
        return re.sub(r"(/users/)<id>", rf"\g<1>{self.user_id}", text)

    def curl(self, argv: list[str]) -> httpx.Response:
        method, url, headers, data = "GET", "", {}, None
        args = iter(argv[1:])
        for arg in args:
            if arg in ("-X", "--request"):
                method = next(args)
            elif arg in ("-H", "--header"):
                name, _, value = next(args).partition(":")
                headers[name.strip()] = value.strip()
            elif arg in ("-d", "--data", "--data-raw"):
                data = next(args)
                if method == "GET":
                    method = "POST"
            elif arg.startswith("-"):
                assert set(arg[1:]) <= {"s", "i"}, f"teach this test curl's {arg}"
            else:
                url = arg
        assert url, f"no URL in {argv}"
        response = self.client.request(method, url, headers=headers, content=data)
        self.ran.append(f"{method} {url} -> {response.status_code}")
        if url.endswith("/auth/register") and response.status_code == 201:
            self.user_id = response.json()["user"]["id"]
        if method == "POST" and url.endswith("/products") and response.status_code == 201:
            self.product_id = response.json()["id"]
        return response


def _check(example: Example, response: httpx.Response) -> None:
    where = f"{example.command} {example.comment}".strip()
    status = LEADING_STATUS.match(example.comment)
    if "<from the link>" in example.command:
        # The token comes by e-mail from a worker; a made-up one gets the documented answer.
        assert response.status_code == 400, f"{where}: {response.text}"
        assert response.json()["type"].endswith("/invalid-reset-token"), response.text
        return
    if status:
        assert response.status_code == int(status.group(1)), f"{where}: {response.text}"
    else:
        assert 200 <= response.status_code < 300, f"{where}: {response.status_code} {response.text}"
    for header in re.findall(r"(ETag|Location): ", example.comment):
        assert header in response.headers, f"{where}: no {header}"
    if response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        if isinstance(body, dict) and "items" in body:
            # A browse example shows what it finds: an empty answer is a broken example.
            assert body["items"], f"{where}: found nothing on the demo data"
        if example.output:
            # The shown answer elides fields with a bare "…"; what it does show must be there.
            shown = re.sub(r"(?<=[,{])\s*…\s*,", "", " ".join(example.output))
            _assert_shape(json.loads(shown), body, where)


def _assert_shape(shown: Any, real: Any, where: str) -> None:
    if isinstance(shown, dict):
        assert isinstance(real, dict), f"{where}: {real!r} is not an object like {shown!r}"
        for key, value in shown.items():
            assert key in real, f"{where}: the answer has no {key!r}: {real}"
            if real[key] is not None:  # a field shown filled in may be null at this moment
                _assert_shape(value, real[key], where)


def _sign_in(reader: Reader, email: str) -> str:
    response = reader.client.post(
        f"{reader.variables['API']}/auth/login",
        json={"email": email, "password": DEMO_PASSWORD},
        headers={"X-Tenant": "acme"},
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def _start_a_job(reader: Reader) -> str:
    response = reader.client.post(
        f"{reader.variables['API']}/products/imports",
        content=IMPORT_CSV,
        headers={
            "Authorization": f"Bearer {reader.variables['ACCESS']}",
            "Content-Type": "text/csv",
        },
    )
    assert response.status_code == 202, response.text
    job_id: str = response.json()["job_id"]
    return job_id


def run_example(reader: Reader, language: str, example: Example) -> None:
    if language == "json":
        _check_problem_example(reader, json.loads(example.command))
        return
    assignment = ASSIGNMENT.match(example.command)
    if assignment and not assignment.group(2).startswith("$("):
        reader.variables[assignment.group(1)] = reader.expand(assignment.group(2))
        return
    if assignment:
        name, inner = assignment.group(1), assignment.group(2)[2:-1]
        if inner.startswith("curl "):
            argv = shlex.split(reader.expand(inner))
            response = reader.curl(argv)
            _check(example, response)
            reader.variables[name] = response.text
            reader.login = argv
            return
        # `echo "$TOKENS" | python3 -c '…["key"]…'`: one field of a JSON document held earlier
        source = re.search(r'echo "\$(\w+)"', inner)
        key = re.search(r'\["(\w+)"\]', inner)
        assert source, f"teach this test: {example.command}"
        assert key, f"teach this test: {example.command}"
        reader.variables[name] = json.loads(reader.variables[source.group(1)])[key.group(1)]
        return
    argv = shlex.split(reader.expand(example.command))
    assert argv[0] == "curl", f"teach this test: {example.command}"
    response = reader.curl(argv)
    _check(example, response)
    if argv[-1].endswith(("/auth/logout", "/auth/logout-all")) and reader.login:
        # The reader signs in again before the next example (the README's own sign-in).
        again = reader.curl(reader.login)
        assert again.status_code == 200, again.text
        reader.variables["TOKENS"] = again.text
        reader.variables["ACCESS"] = again.json()["access_token"]
        reader.variables["REFRESH"] = again.json()["refresh_token"]


def _check_problem_example(reader: Reader, shown: dict[str, Any]) -> None:
    """The README's problem document is the real answer to the request it describes."""
    seller = _sign_in(reader, "seller1@acme.example")
    body = {
        "sku": "README-NEG",
        "name": "Negative",
        "category": "misc",
        "price": {"amount": -1, "currency": "EUR"},
        "stock": 1,
    }
    response = reader.client.post(
        f"{reader.variables['API']}/products",
        json=body,
        headers={"Authorization": f"Bearer {seller}"},
    )
    assert response.status_code == shown["status"], response.text
    assert response.json() == shown


@pytest.fixture(scope="module")
def demo_server(db: database.Conninfos, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`impextech serve` over a database of its own holding the demo data (seed_demo)."""
    workdir = tmp_path_factory.mktemp("readme")
    with scratch_database(superuser_of(db.owner), "impextech_readme") as infos:
        database.upgrade(infos.owner, APP_ROLE)
        env = cli_env(infos, workdir / "data", IMPEXTECH_LOG_LEVEL="warning")
        settings = Settings.from_env({k: v for k, v in env.items() if k.startswith("IMPEXTECH_")})

        async def seed() -> None:
            owner = Database.connect(infos.owner, size=1)
            assembly = assemble(Process.COMMAND, settings, infos.app, pool_size=2)
            try:
                assert await seed_demo(owner, assembly)
            finally:
                await assembly.close()
                await owner.dispose()

        asyncio.run(seed())
        port = free_port()
        stderr_path = workdir / "server.stderr"
        with stderr_path.open("wb") as stderr:
            process = subprocess.Popen(
                [str(CLI), "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                cwd=workdir,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
            )
        base_url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_live(process, base_url, stderr_path)
            yield base_url
        finally:
            process.terminate()
            process.wait(timeout=10)


def test_every_readme_example_works_on_the_demo_data(demo_server: str) -> None:
    readme = README.read_text(encoding="utf-8")
    found = list(examples(readme))
    assert sum(1 for _, e in found if "curl " in e.command) >= 15, "the README lost its examples"
    with httpx.Client(timeout=30.0) as client:
        reader = Reader(client)
        for language, example in found:
            if language != "json" and not ("curl " in example.command or "=" in example.command):
                continue  # the setup block (tasks.py, impextech demo) is not an API example
            if "localhost:8000" in example.command:
                example.command = example.command.replace("http://localhost:8000", demo_server)
            if "$ADMIN" in example.command and "ADMIN" not in reader.variables:
                reader.variables["ADMIN"] = _sign_in(reader, "admin@acme.example")
            if "$JOB" in example.command and "JOB" not in reader.variables:
                reader.variables["JOB"] = _start_a_job(reader)
            run_example(reader, language, example)
    assert reader.ran, "no example ran"


def test_the_parser_reads_a_broken_example_as_broken() -> None:
    """The check above can fail: a browse example that finds nothing is refused."""
    example = Example("curl -s $API/products", "")
    empty = httpx.Response(
        200, json={"items": [], "next_cursor": None}, request=httpx.Request("GET", "http://x")
    )
    with pytest.raises(AssertionError, match="found nothing"):
        _check(example, empty)
    wrong = httpx.Response(201, json={}, request=httpx.Request("POST", "http://x"))
    with pytest.raises(AssertionError):
        _check(Example("curl …", "# 204"), wrong)
