"""Where e-mail goes: a file outbox for development and demos, an SMTP relay in production.

Chosen by one URL (IMPEXTECH_MAIL_URL):

- ``file:`` (or empty): one ``.eml`` file per message under ``<data dir>/outbox``;
  ``file:///some/dir`` puts them there instead;
- ``smtp://host[:port]`` plain (port 25), ``smtp+starttls://user:pass@host[:port]`` (587),
  ``smtps://user:pass@host[:port]`` (TLS from the start, 465).

Both write with blocking calls, so they run in a worker thread; SMTP has explicit timeouts.
"""

from __future__ import annotations

import asyncio
import os
import smtplib
import ssl
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from urllib.parse import unquote, urlsplit

from impextech.identity.service.ports import Mailer, MailMessage


def _email(message: MailMessage, sender: str) -> EmailMessage:
    email = EmailMessage()
    email["From"] = sender
    email["To"] = message.to
    email["Subject"] = message.subject
    email["Date"] = format_datetime(datetime.now(UTC))
    email["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    email.set_content(message.text)
    return email


class FileOutboxMailer:
    """Each message becomes a file only its owner can read (it holds a live reset link)."""

    def __init__(self, directory: Path, sender: str) -> None:
        self.directory = directory
        self._sender = sender

    def _write(self, message: MailMessage) -> Path:
        # Built first: a message that cannot be built (a line break in a header) leaves no file.
        data = bytes(_email(message, self._sender))
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        path = self.directory / f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
        # Created 0600 from the start: no moment when another user could open it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        return path

    async def send(self, message: MailMessage) -> None:
        await asyncio.to_thread(self._write, message)


class SmtpMailer:
    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        security: str = "none",  # none, starttls or tls
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        if security not in ("none", "starttls", "tls"):
            raise ValueError(f"unknown SMTP security {security!r}")
        self.host, self.port, self.security = host, port, security
        self._sender = sender
        self._username, self._password = username, password
        self._timeout = timeout

    def _deliver(self, message: MailMessage) -> None:
        context = ssl.create_default_context()
        # Connected separately so that a relay that never answers still gets its socket closed.
        client: smtplib.SMTP = (
            smtplib.SMTP_SSL(timeout=self._timeout, context=context)
            if self.security == "tls"
            else smtplib.SMTP(timeout=self._timeout)
        )
        try:
            client.connect(self.host, self.port)
            if self.security == "starttls":
                client.starttls(context=context)
            if self._username:
                client.login(self._username, self._password or "")
            client.send_message(_email(message, self._sender))
            client.quit()
        finally:
            client.close()

    async def send(self, message: MailMessage) -> None:
        await asyncio.to_thread(self._deliver, message)


_SMTP_SCHEMES = {"smtp": ("none", 25), "smtp+starttls": ("starttls", 587), "smtps": ("tls", 465)}


def make_mailer(url: str, *, data_dir: Path, sender: str, timeout: float = 10.0) -> Mailer:
    """The mailer a mail URL names (see the module's text); ValueError for anything else."""
    parts = urlsplit(url.strip() or "file:")
    if parts.scheme == "file":
        directory = Path(unquote(parts.path)) if parts.path else data_dir / "outbox"
        return FileOutboxMailer(directory, sender)
    if parts.scheme in _SMTP_SCHEMES:
        security, default_port = _SMTP_SCHEMES[parts.scheme]
        if not parts.hostname:
            raise ValueError("the mail URL names no SMTP host")
        return SmtpMailer(
            parts.hostname,
            parts.port or default_port,
            sender,
            security=security,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            timeout=timeout,
        )
    raise ValueError(
        f"unknown mail URL scheme {parts.scheme!r}: use file, smtp, smtp+starttls or smtps"
    )
