"""Where messages go: an SMTP server (aiosmtplib, one connection per batch) or `.eml` files in a folder.

Failures are sorted once, here, into faults of the server and faults of one message:

    DeliveryError
    ├── ServerFaultError          no connection, TLS failure, login refused (535), server closing: delivery pauses,
    │                             the messages wait without an attempt counted
    ├── TemporaryDeliveryError    a 4xx about this message: retried with backoff
    │   └── ConnectionLostError   the connection dropped while sending it: the rest of the batch waits
    └── PermanentDeliveryError    a 5xx about this message or all its recipients: dead letter

A recipient refused among several comes back in the result.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Protocol

import aiosmtplib

from notifications.addresses import envelope_sender
from notifications.settings import MailSettings
from notifications.storage import private_folder


class DeliveryError(Exception):
    """A message could not be handed over."""


class TemporaryDeliveryError(DeliveryError):
    """Worth retrying later: the server is down, slow, or answered 4xx."""


class ConnectionLostError(TemporaryDeliveryError):
    """The connection dropped mid-batch: the rest of the batch waits for the next pass."""


class PermanentDeliveryError(DeliveryError):
    """Not worth retrying: the server answered 5xx about this message (MAIL FROM, RCPT TO or DATA)."""


class ServerFaultError(DeliveryError):
    """The server or our account is at fault, not a message: no connection, TLS, login. Delivery pauses."""


#: Answers about the session rather than a message: authentication needed or refused, TLS needed.
_SESSION_CODES = frozenset({454, 530, 534, 535, 538})


@dataclass(frozen=True)
class Delivered:
    """A message handed over; `refused` maps each refused recipient to the server's answer."""

    refused: dict[str, str] = field(default_factory=dict)


class Transport(Protocol):
    """Sends messages over one session (`async with transport:`)."""

    async def __aenter__(self) -> Transport: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def send(self, message: EmailMessage, recipients: list[str]) -> Delivered:
        """Hand one message over, or raise a `DeliveryError` saying whose fault it is."""
        ...


class SmtpTransport:
    """One SMTP connection reused for a whole batch (STARTTLS or implicit TLS and login from the settings)."""

    def __init__(self, settings: MailSettings) -> None:
        assert settings.smtp_host is not None
        self._settings = settings
        self._client: aiosmtplib.SMTP | None = None

    async def __aenter__(self) -> SmtpTransport:
        settings = self._settings
        where = f"{settings.smtp_host}:{settings.smtp_port}"
        try:
            client = aiosmtplib.SMTP(
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                use_tls=settings.smtp_tls == "tls",
                start_tls=settings.smtp_tls == "starttls",
                timeout=settings.smtp_timeout,
                username=settings.smtp_username,
                password=settings.smtp_password,
            )
            await client.connect()
        except aiosmtplib.SMTPAuthenticationError as error:
            raise ServerFaultError(f"SMTP login refused by {where} ({error.code})") from None
        except aiosmtplib.SMTPResponseException as error:
            raise ServerFaultError(f"{where} answered {error.code} {_one_line(error.message)}") from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            raise ServerFaultError(f"cannot reach {where}: {_one_line(error)}") from None
        except Exception as error:  # e.g. a value the socket layer refuses: still no connection, not a message
            raise ServerFaultError(f"cannot reach {where}: {type(error).__name__}: {_one_line(error)}") from None
        self._client = client
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._client is not None and self._client.is_connected:
            try:
                await self._client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                self._client.close()
        self._client = None

    async def send(self, message: EmailMessage, recipients: list[str]) -> Delivered:
        """Send over the open connection."""
        assert self._client is not None
        try:
            # The envelope is given, never parsed from the headers: RCPT TO is the stored address, verbatim.
            errors, _ = await self._client.send_message(
                message, sender=envelope_sender(self._settings.mail_from), recipients=recipients
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            answers = {r.recipient: f"{r.code} {r.message}" for r in error.recipients}
            if all(r.code in _SESSION_CODES for r in error.recipients):
                raise ServerFaultError(f"the server refuses the session: {_answers(answers)}") from None
            if all(r.code >= 500 for r in error.recipients):
                raise PermanentDeliveryError(f"every recipient refused: {_answers(answers)}") from None
            raise TemporaryDeliveryError(f"recipients refused for now: {_answers(answers)}") from None
        except aiosmtplib.SMTPResponseException as error:
            raise _classify(error) from None
        except aiosmtplib.SMTPNotSupported as error:
            # e.g. a non-ASCII address and a server without SMTPUTF8: this message can never go, the others can.
            raise PermanentDeliveryError(f"not supported by the server: {_one_line(error)}") from None
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError, TimeoutError) as error:
            raise ConnectionLostError(f"connection lost: {_one_line(error)}") from None
        except aiosmtplib.SMTPException as error:
            raise TemporaryDeliveryError(f"SMTP error: {_one_line(error)}") from None
        return Delivered(refused={r: f"{a.code} {a.message}" for r, a in errors.items()})


class FileTransport:
    """The embedded default: each message written atomically as an `.eml` file into a folder."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder

    async def __aenter__(self) -> FileTransport:
        try:
            private_folder(self._folder)
        except OSError as error:
            raise ServerFaultError(f"cannot create {self._folder}: {error.strerror}") from None
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    async def send(self, message: EmailMessage, recipients: list[str]) -> Delivered:
        """Write the message as `<outbox id>.eml` (same name on a resend, so never two files for one message)."""
        name = f"{message['X-ESMS-Outbox-Id']}.eml"
        try:
            with tempfile.NamedTemporaryFile("wb", dir=self._folder, delete=False, suffix=".tmp") as handle:
                handle.write(message.as_bytes())
            os.replace(handle.name, self._folder / name)
        except OSError as error:
            raise TemporaryDeliveryError(f"cannot write {self._folder / name}: {error.strerror}") from None
        return Delivered()


def make_transport(settings: MailSettings) -> Transport:
    """SMTP when a host is set, else files."""
    if settings.smtp_host:
        return SmtpTransport(settings)
    return FileTransport(settings.mail_dir)


def _classify(error: aiosmtplib.SMTPResponseException) -> DeliveryError:
    text = f"{error.code} {_one_line(error.message)}"
    if error.code in _SESSION_CODES:
        return ServerFaultError(f"the server refuses the session: {text}")
    if error.code == 421:  # the server is closing the connection
        return ConnectionLostError(f"connection closed by the server: {text}")
    return PermanentDeliveryError(text) if error.code >= 500 else TemporaryDeliveryError(text)


def _answers(answers: dict[str, str]) -> str:
    return "; ".join(f"{r}: {_one_line(a)}" for r, a in sorted(answers.items()))


def _one_line(value: object) -> str:
    return " ".join(str(value).split())[:500]
