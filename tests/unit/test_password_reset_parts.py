"""The parts of password reset that need no database: tokens, the password list, the mailers."""

from __future__ import annotations

import asyncio
import email
import smtplib
import stat
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from impextech.identity.adapters.mailers import FileOutboxMailer, SmtpMailer, make_mailer
from impextech.identity.domain.errors import InvalidResetToken, WeakPassword
from impextech.identity.domain.password_reset import (
    decode_seed,
    encode_seed,
    hash_reset_token,
    reset_token,
    tenant_of_reset_token,
)
from impextech.identity.domain.passwords import check_password, known_passwords
from impextech.identity.service.ports import MailMessage

KEY = b"k" * 32
TENANT = uuid.UUID("0f0e0d0c-0b0a-0908-0706-050403020100")
MESSAGE = MailMessage("ada@example.org", "Reset your password", "Open https://x/?token=abc\n")


# -- tokens ---------------------------------------------------------------------------------------


def test_a_token_names_its_tenant_and_depends_on_key_and_seed() -> None:
    seed = bytes(range(32))
    token = reset_token(KEY, TENANT, seed)
    prefix, _, secret = token.partition(".")
    assert prefix == TENANT.hex
    assert len(secret) == 43  # 256 bits, base64url without padding
    assert tenant_of_reset_token(token) == TENANT
    assert reset_token(KEY, TENANT, seed) == token
    assert reset_token(b"other" * 8, TENANT, seed) != token
    assert reset_token(KEY, TENANT, bytes(32)) != token
    assert reset_token(KEY, uuid.UUID(int=1), seed).partition(".")[2] != secret
    assert len(hash_reset_token(token)) == 32


def test_seeds_round_trip_and_bad_ones_are_refused() -> None:
    seed = bytes(range(32))
    assert decode_seed(encode_seed(seed)) == seed
    for bad in ("", "abc", encode_seed(bytes(31)), "!!!!"):
        with pytest.raises(ValueError, match="seed"):
            decode_seed(bad)


@pytest.mark.parametrize(
    "token", ["", "abc", f"{TENANT.hex}.short", f"{'z' * 32}.{'A' * 43}", f"{TENANT.hex}{'A' * 44}"]
)
def test_malformed_tokens_are_invalid(token: str) -> None:
    with pytest.raises(InvalidResetToken):
        tenant_of_reset_token(token)


# -- the breached-password list -------------------------------------------------------------------


def test_the_list_holds_tens_of_thousands_of_breached_passwords() -> None:
    known = known_passwords()
    assert len(known) > 30_000
    # From the breach corpus, not from our own short list.
    for leaked in ("contortionist", "morganstanley", "1qazxsw23edcvfr4", "qwerty123456789"):
        assert leaked in known


@pytest.mark.parametrize(
    "password", ["contortionist", "MorganStanley", "toystory20252026", "rocketman!!!!!!"]
)
def test_breached_passwords_and_their_suffixed_forms_are_refused(password: str) -> None:
    with pytest.raises(WeakPassword) as caught:
        check_password(password)
    assert "commonly used" in caught.value.detail


def test_the_list_can_be_given_explicitly() -> None:
    check_password("contortionist", common=frozenset())  # an empty list refuses nothing
    with pytest.raises(WeakPassword):
        check_password("my own banned phrase", common=frozenset({"my own banned phrase"}))


def test_a_lookup_is_fast_once_loaded() -> None:
    known_passwords()
    started = time.perf_counter()
    for _ in range(1000):
        with pytest.raises(WeakPassword):
            check_password("baseball123456")
    assert time.perf_counter() - started < 0.5


# -- mailers --------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_file_outbox_writes_one_private_file_per_message(tmp_path: Path) -> None:
    mailer = FileOutboxMailer(tmp_path / "outbox", "Shop <no-reply@shop.example>")
    await mailer.send(MESSAGE)
    await mailer.send(MESSAGE)
    files = sorted((tmp_path / "outbox").iterdir())
    assert len(files) == 2
    assert stat.S_IMODE((tmp_path / "outbox").stat().st_mode) == 0o700
    for path in files:
        assert path.suffix == ".eml"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        parsed = email.message_from_bytes(path.read_bytes())
        assert parsed["To"] == "ada@example.org"
        assert parsed["From"] == "Shop <no-reply@shop.example>"
        assert parsed["Message-ID"].endswith("@shop.example>")
        assert parsed.get_payload(decode=True) == MESSAGE.text.encode()


def test_mail_urls_choose_the_mailer(tmp_path: Path) -> None:
    default = make_mailer("", data_dir=tmp_path, sender="s@x.example")
    assert isinstance(default, FileOutboxMailer)
    assert default.directory == tmp_path / "outbox"
    elsewhere = make_mailer("file:///srv/mail", data_dir=tmp_path, sender="s@x.example")
    assert isinstance(elsewhere, FileOutboxMailer)
    assert elsewhere.directory == Path("/srv/mail")
    for url, security, port in (
        ("smtp://relay.example", "none", 25),
        ("smtp+starttls://u%40x:p%2Fw@relay.example", "starttls", 587),
        ("smtps://relay.example:2465", "tls", 2465),
    ):
        smtp = make_mailer(url, data_dir=tmp_path, sender="s@x.example")
        assert isinstance(smtp, SmtpMailer)
        assert (smtp.host, smtp.port, smtp.security) == ("relay.example", port, security)
    for bad in ("http://relay.example", "smtp://", "mailto:a@b"):
        with pytest.raises(ValueError, match="mail URL"):
            make_mailer(bad, data_dir=tmp_path, sender="s@x.example")


class FakeRelay:
    """A minimal SMTP server on loopback that records what it was given."""

    def __init__(self, *, greet: bool = True) -> None:
        self.greet = greet
        self.commands: list[str] = []
        self.data: list[bytes] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.greet:
            await reader.read()  # until the client gives up and hangs up
            writer.close()
            await writer.wait_closed()
            return
        writer.write(b"220 fake ready\r\n")
        while line := await reader.readline():
            command = line.decode().strip()
            self.commands.append(command.split(" ", 1)[0].upper())
            if command.upper().startswith("EHLO"):
                writer.write(b"250 fake\r\n")
            elif command.upper() == "DATA":
                writer.write(b"354 go on\r\n")
                await writer.drain()
                self.data.append(await reader.readuntil(b"\r\n.\r\n"))
                writer.write(b"250 queued\r\n")
            elif command.upper() == "QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"250 ok\r\n")
            await writer.drain()
        writer.close()
        await writer.wait_closed()


@pytest.fixture
async def relay() -> AsyncIterator[tuple[FakeRelay, int]]:
    fake = FakeRelay()
    server = await asyncio.start_server(fake.serve, "127.0.0.1", 0)
    async with server:
        yield fake, server.sockets[0].getsockname()[1]


@pytest.mark.anyio
async def test_smtp_hands_the_message_to_the_relay(relay: tuple[FakeRelay, int]) -> None:
    fake, port = relay
    mailer = make_mailer(f"smtp://127.0.0.1:{port}", data_dir=Path("."), sender="s@x.example")
    await mailer.send(MESSAGE)
    assert fake.commands == ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"]
    [data] = fake.data
    parsed = email.message_from_bytes(data.removesuffix(b"\r\n.\r\n"))
    assert parsed["To"] == "ada@example.org"
    assert parsed["Subject"] == "Reset your password"


@pytest.mark.anyio
async def test_a_silent_relay_times_out_instead_of_hanging() -> None:
    silent = FakeRelay(greet=False)
    server = await asyncio.start_server(silent.serve, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        mailer = SmtpMailer("127.0.0.1", port, "s@x.example", timeout=0.3)
        started = time.monotonic()
        with pytest.raises(smtplib.SMTPServerDisconnected, match="timed out"):
            await mailer.send(MESSAGE)
        assert time.monotonic() - started < 3
