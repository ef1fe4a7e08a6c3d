"""Mailer: the file outbox (FileOutboxMailer) and FakeMailer, one behaviour: what a message
holds when it arrives. The outbox's files are read back as a mail client would read them."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from impextech.identity.adapters.mailers import FileOutboxMailer
from impextech.identity.service.ports import Mailer, MailMessage
from tests.fakes.identity import FakeMailer

pytestmark = pytest.mark.anyio

SENDER = "Impextech <noreply@impextech.example>"


@dataclass
class MailRig:
    mailer: Mailer
    directory: Path | None

    def sent(self) -> list[MailMessage]:
        if isinstance(self.mailer, FakeMailer):
            return list(self.mailer.sent)
        assert self.directory is not None
        if not self.directory.exists():
            return []
        return [_read(path) for path in sorted(self.directory.iterdir())]


def _read(path: Path) -> MailMessage:
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    assert parsed["From"] == SENDER
    return MailMessage(str(parsed["To"]), str(parsed["Subject"]), parsed.get_content())


@pytest.fixture(params=["file", "fake"])
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MailRig]:
    if request.param == "fake":
        yield MailRig(FakeMailer(), None)
    else:
        outbox = tmp_path / "outbox"
        yield MailRig(FileOutboxMailer(outbox, SENDER), outbox)


LINK = "https://acme.example/reset-password?token=" + "0123456789abcdef" * 8


async def test_a_message_arrives_with_its_recipient_subject_and_text(rig: MailRig) -> None:
    message = MailMessage(
        to="Zoë Example <zoe@acme.example>",
        subject="Réinitialisez votre mot de passe",
        text=f"Hello Zoë,\n\nOpen this link within 30 minutes:\n\n{LINK}\n\nThanks — Impextech\n",
    )
    await rig.mailer.send(message)
    assert rig.sent() == [message]


async def test_messages_arrive_in_the_order_sent(rig: MailRig) -> None:
    first = MailMessage("ada@acme.example", "First", "One.\n")
    second = MailMessage("bea@acme.example", "Second", "Two.\n")
    await rig.mailer.send(first)
    await rig.mailer.send(second)
    assert rig.sent() == [first, second]


@pytest.mark.parametrize(
    "message",
    [
        MailMessage("ada@acme.example", "Hi\nBcc: eve@evil.example", "Text.\n"),
        MailMessage("ada@acme.example\r\nBcc: eve@evil.example", "Hi", "Text.\n"),
    ],
)
async def test_a_header_with_a_line_break_is_refused_and_nothing_is_sent(
    rig: MailRig, message: MailMessage
) -> None:
    with pytest.raises(ValueError, match="linefeed or carriage return"):
        await rig.mailer.send(message)
    assert rig.sent() == []
