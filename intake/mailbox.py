"""The IMAP edge: connect, list new mail, fetch it in bounded batches, file it away.

Every server error becomes a `MailboxError` with one readable sentence. The
mailbox is read with BODY.PEEK[] (never setting \\Seen) and nothing is ever
deleted: filing is MOVE, or COPY + \\Deleted + UID EXPUNGE of exactly those UIDs.
A folder is created when missing, and again whenever the server answers
[TRYCREATE]; a failed folder operation forgets what was known about folders, so
an interrupted CREATE or SUBSCRIBE is done again by the next attempt.
IMAPClient 4.x mishandles sequence-set strings, so every call passes an
explicit list of UIDs (packages.md §1).
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import socket
import ssl
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from types import TracebackType

from imapclient import IMAPClient, SocketTimeout
from imapclient.exceptions import IMAPClientError, LoginError

from intake.config import ImapSettings
from intake.oauth import TokenError, TokenProvider, provider_for

log = logging.getLogger(__name__)


class MailboxError(Exception):
    """The IMAP server could not be reached or did not do what was asked."""


@dataclass(frozen=True)
class RawMessage:
    uid: int
    received_at: datetime  # INTERNALDATE: when the server received the message
    size: int  # RFC822.SIZE
    raw: bytes  # the whole message, or its header alone when headers_only
    headers_only: bool = False


def _describe(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "the server did not answer in time"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"its TLS certificate could not be verified ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed ({exc.reason or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return "the connection was refused (is the server running, and is the port right?)"
    if isinstance(exc, socket.gaierror):
        return "the host name could not be resolved"
    if isinstance(exc, imaplib.IMAP4.abort | EOFError | ConnectionError):
        return f"the connection was lost ({exc or type(exc).__name__})"
    text = str(exc).strip() or type(exc).__name__
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return text


_ERRORS = (IMAPClientError, imaplib.IMAP4.error, OSError, EOFError, ssl.SSLError)
# LIST flags of a name that cannot hold mail (RFC 3501 7.2.2, RFC 5258 3).
_NOT_A_MAILBOX = {b"\\noselect", b"\\nonexistent"}


def _tls_context(settings: ImapSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if settings.ca_file:
        context.load_verify_locations(cafile=str(settings.ca_file))
    return context


class Mailbox:
    """One connection to one folder of one mailbox; use as a context manager."""

    def __init__(self, settings: ImapSettings, token_provider: TokenProvider | None = None) -> None:
        self.settings = settings
        self.where = f"IMAP server {settings.host}:{settings.port}"
        self._token_provider = token_provider
        self._client: IMAPClient | None = None
        self._delimiter: str | None = None
        self._known_folders: set[str] = set()

    # -- connection -------------------------------------------------------
    def __enter__(self) -> Mailbox:
        self.connect()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _fail(self, doing: str, exc: BaseException) -> MailboxError:
        return MailboxError(f"{self.where}: {doing} failed: {_describe(exc)}")

    @property
    def client(self) -> IMAPClient:
        if self._client is None:
            raise MailboxError(f"{self.where}: not connected")
        return self._client

    def connect(self) -> None:
        self._open()
        s = self.settings
        try:
            if s.auth == "xoauth2":
                self._oauth2_login()
            else:
                self.client.login(s.user, s.password.reveal())
        except MailboxError:
            self.close()
            raise
        except _ERRORS as exc:
            self.close()
            reason = _describe(exc)
            if isinstance(exc, IMAPClientError) and "login" in type(exc).__name__.lower():
                reason = f"the server refused the sign-in for {s.user!r} ({reason})"
            raise MailboxError(f"{self.where}: signing in failed: {reason}") from exc

    def _open(self) -> None:
        """Connect (and STARTTLS), not yet signed in."""
        s = self.settings
        timeout = SocketTimeout(connect=s.connect_timeout, read=s.read_timeout)
        try:
            client = IMAPClient(
                s.host,
                port=s.port,
                ssl=s.tls == "ssl",
                ssl_context=_tls_context(s) if s.tls == "ssl" else None,
                timeout=timeout,
            )
        except _ERRORS as exc:
            raise self._fail("connecting", exc) from exc
        # imaplib keeps a text copy of every literal at debug level 5, which
        # IMAPClient sets: 7-10x slower fetching (measurements.md).
        client._imap.debug = 0
        client.normalise_times = False
        self._client = client
        try:
            if s.tls == "starttls":
                client.starttls(_tls_context(s))
        except _ERRORS as exc:
            self.close()
            raise self._fail("STARTTLS", exc) from exc

    def _token(self) -> tuple[TokenProvider, str]:
        if self._token_provider is None:
            if self.settings.oauth is None:
                raise MailboxError(f"{self.where}: imap.auth is xoauth2 but no token source is configured")
            self._token_provider = provider_for(self.settings.oauth)
        try:
            return self._token_provider, self._token_provider.token()
        except TokenError as exc:
            raise MailboxError(f"{self.where}: signing in failed: no access token: {exc}") from exc

    def _oauth2_login(self) -> None:
        tokens, token = self._token()
        try:
            self.client.oauth2_login(self.settings.user, token)
            return
        except LoginError:
            # Revoked, or expired sooner than it said: one new token, one more try.
            tokens.refused(token)
            _, fresh = self._token()
            if fresh == token:
                raise
        log.warning("%s refused the access token; signing in again with a new one", self.where)
        # On a new connection: a server may drop the one that failed to sign in.
        self.close()
        self._open()
        self.client.oauth2_login(self.settings.user, fresh)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.logout()
        except Exception:
            with contextlib.suppress(Exception):
                client.shutdown()

    # -- reading ----------------------------------------------------------
    def select(self, folder: str) -> int:
        """Select the folder read-write; returns its UIDVALIDITY."""
        try:
            info = self.client.select_folder(folder)
        except _ERRORS as exc:
            raise self._fail(f"opening folder {folder!r}", exc) from exc
        return int(info[b"UIDVALIDITY"])

    def uids(self) -> list[int]:
        """Every UID in the selected folder, except those we flagged \\Deleted."""
        try:
            return sorted(int(u) for u in self.client.search(["UNDELETED"]))
        except _ERRORS as exc:
            raise self._fail("listing messages", exc) from exc

    def sizes(self, uids: list[int]) -> dict[int, int]:
        result: dict[int, int] = {}
        for chunk in _chunks(uids, 500):
            try:
                data = self.client.fetch(chunk, ["RFC822.SIZE"])
            except _ERRORS as exc:
                raise self._fail("reading message sizes", exc) from exc
            for uid, item in data.items():
                result[int(uid)] = int(item.get(b"RFC822.SIZE", 0))
        return result

    def fetch(self, uids: list[int], headers_only: bool = False) -> Iterator[RawMessage]:
        """Fetch whole messages (or their headers); a UID the server leaves out is skipped
        and will be tried again on the next run."""
        if not uids:
            return
        section = "BODY.PEEK[HEADER]" if headers_only else "BODY.PEEK[]"
        key = b"BODY[HEADER]" if headers_only else b"BODY[]"
        try:
            data = self.client.fetch(uids, ["RFC822.SIZE", "INTERNALDATE", section])
        except _ERRORS as exc:
            raise self._fail("fetching messages", exc) from exc
        for uid in uids:
            item = data.get(uid)
            if item is None or key not in item:
                log.warning("%s did not return UID %s; it will be tried on the next run", self.where, uid)
                continue
            received = item.get(b"INTERNALDATE")
            if not isinstance(received, datetime):
                received = datetime.now(UTC)
            elif received.tzinfo is None:
                received = received.replace(tzinfo=UTC)
            yield RawMessage(
                uid=uid,
                received_at=received.astimezone(UTC),
                size=int(item.get(b"RFC822.SIZE", 0)),
                raw=bytes(item[key] or b""),
                headers_only=headers_only,
            )

    # -- filing -----------------------------------------------------------
    def folder_name(self, *path: str) -> str:
        if self._delimiter is None:
            try:
                listing = self.client.list_folders("", "INBOX")
                delimiter = listing[0][1] if listing else b"/"
            except _ERRORS as exc:
                raise self._fail("reading the folder separator", exc) from exc
            if isinstance(delimiter, bytes):
                delimiter = delimiter.decode()
            self._delimiter = delimiter or "/"
        return self._delimiter.join(path)

    def forget_folders(self) -> None:
        """Forget what this connection learnt about folders: after a failed folder
        operation, the next attempt asks the server again (a CREATE cut half-way can
        leave a name that LIST shows and MOVE refuses)."""
        self._known_folders.clear()

    def _selectable(self, folder: str) -> bool:
        """Does `folder` exist as a mailbox that can hold mail? A name LIST shows as
        \\Noselect or \\NonExistent (a bare directory, a CREATE cut half-way) does not."""
        for flags, _delimiter, name in self.client.list_folders("", folder):
            if name == folder:
                return not {_flag(f) for f in flags} & _NOT_A_MAILBOX
        return False

    def _create(self, folder: str) -> None:
        try:
            self.client.create_folder(folder)
        except imaplib.IMAP4.abort:
            raise
        except IMAPClientError:
            # Another poller may have created it in the meantime.
            if not self._selectable(folder):
                raise
        log.info("%s: created folder %r", self.where, folder)

    def _subscribe(self, folder: str) -> None:
        """Keep our folders subscribed so that mail clients show them; a server that
        refuses (NO, BAD) costs nothing, as unsubscribed folders still hold mail. Asked
        every time, so that a SUBSCRIBE cut half-way is done on the next attempt."""
        try:
            if not self.client.list_sub_folders("", folder):
                self.client.subscribe_folder(folder)
        except imaplib.IMAP4.abort:
            raise
        except IMAPClientError as exc:
            log.warning("%s: could not subscribe to %r (%s); it works all the same", self.where, folder, exc)

    def ensure_folder(self, folder: str) -> None:
        if folder in self._known_folders:
            return
        try:
            if not self._selectable(folder):
                self._create(folder)
            self._subscribe(folder)
        except _ERRORS as exc:
            self.forget_folders()
            raise self._fail(f"creating folder {folder!r}", exc) from exc
        self._known_folders.add(folder)

    def _into_folder(self, folder: str, command: Callable[[], object]) -> None:
        """Run a COPY, MOVE or APPEND into `folder`. A [TRYCREATE] answer (RFC 3501
        6.3.11, 6.4.7; RFC 6851) means the folder is not there after all: create it,
        then try once more."""
        try:
            command()
            return
        except imaplib.IMAP4.abort:
            raise
        except IMAPClientError as exc:
            if "[TRYCREATE]" not in str(exc).upper():
                raise
        log.warning(
            "%s: folder %r is missing ([TRYCREATE]); creating it and trying again", self.where, folder
        )
        self.forget_folders()
        self._create(folder)
        self._subscribe(folder)
        self._known_folders.add(folder)
        command()

    def append(
        self, folder: str, messages: Sequence[tuple[bytes, datetime]], flags: tuple[bytes, ...] = (b"\\Seen",)
    ) -> None:
        """Add messages of our own (copies of replies: bytes and date) to a folder: in one
        MULTIAPPEND where the server offers it (RFC 3502: all of them or none, one round of
        the server's work instead of one per message), else one APPEND each."""
        self.ensure_folder(folder)
        client = self.client
        try:
            if len(messages) > 1 and client.has_capability("MULTIAPPEND"):
                items = [{"msg": raw, "flags": flags, "date": when} for raw, when in messages]
                self._into_folder(folder, partial(_multiappend, client, folder, items))
            else:
                for raw, when in messages:
                    self._into_folder(folder, partial(client.append, folder, raw, flags=flags, msg_time=when))
        except _ERRORS as exc:
            self.forget_folders()
            what = "a message" if len(messages) == 1 else f"{len(messages)} messages"
            raise self._fail(f"adding {what} to {folder!r}", exc) from exc

    def file(self, uids: list[int], folder: str) -> None:
        """Move messages into `folder` without ever deleting mail."""
        self.ensure_folder(folder)
        client = self.client
        for chunk in _chunks(sorted(uids), 500):
            try:
                if client.has_capability("MOVE"):
                    self._into_folder(folder, partial(client.move, chunk, folder))
                    continue
                self._into_folder(folder, partial(client.copy, chunk, folder))
                client.add_flags(chunk, [b"\\Deleted"])
                if client.has_capability("UIDPLUS"):
                    client.uid_expunge(chunk)
                # Without UIDPLUS the copies stay flagged \Deleted in the inbox: a
                # bare EXPUNGE would also remove mail that others flagged.
            except _ERRORS as exc:
                self.forget_folders()
                what = f"UID {chunk[0]}" if len(chunk) == 1 else f"{len(chunk)} messages"
                raise self._fail(f"filing {what} into {folder!r}", exc) from exc


def _multiappend(client: IMAPClient, folder: str, items: list[dict[str, object]]) -> None:
    """IMAPClient's multiappend, failing as its append does: it returns the server's NO or BAD
    (a [TRYCREATE] included) instead of raising it (imapclient 3.0)."""
    typ, data = client.multiappend(folder, items)
    if typ != "OK":
        text = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
        raise IMAPClientError(f"APPEND failed: {text}")


def _flag(flag: bytes | str) -> bytes:
    return (flag if isinstance(flag, bytes) else flag.encode()).lower()


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def batches(
    uids: Iterable[int], sizes: dict[int, int], max_count: int, max_bytes: int
) -> Iterator[list[int]]:
    """Group UIDs so that each batch stays within a message count and a byte total."""
    batch: list[int] = []
    total = 0
    for uid in uids:
        size = sizes.get(uid, 0)
        if batch and (len(batch) >= max_count or total + size > max_bytes):
            yield batch
            batch, total = [], 0
        batch.append(uid)
        total += size
    if batch:
        yield batch
