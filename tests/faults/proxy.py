"""A TCP proxy on loopback that cuts IMAP connections where a test wants.

It forwards each client connection to the upstream server (Dovecot). Two ways
to cut, set before the client connects:

- `cut_after`: once that many bytes of server-to-client traffic have gone
  through, both sockets close at once: the client sees the server vanish in
  the middle of whatever it was reading, typically a FETCH literal;
- `cut_on`: once the client has sent a whole command of one of these verbs
  (CREATE, MOVE, UID MOVE, APPEND with its literal...), the command reaches the
  server and nothing more reaches the client: by default the proxy waits for
  the server's tagged answer, drops it and closes both sockets (the server did
  it, the client never learns); with `on_command` set, that callable runs
  instead (the test kills the server there) and the sockets close after it.

`hide_capabilities` removes capability names from what the server announces
(MOVE, UIDPLUS, MULTIAPPEND), so the client takes its fallback path against a
server that has them; with either, or with `watch_commands`, each connection
keeps the verbs the client sent. What the server sent on each connection is kept, so a test can tell
where the cut fell.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

_LITERAL = re.compile(rb"\{(\d+)\}\r\n")
_LITERAL_AT_END = re.compile(rb"\{(\d+)\+?\}$")  # a line announcing a literal (RFC 7888 too)


@dataclass
class Connection:
    from_server: bytearray = field(default_factory=bytearray)
    cut: bool = False
    cut_command: str | None = None  # the verb whose answer the client never got
    held_tag: bytes | None = None  # set once that command has gone to the server
    commands: list[str] = field(default_factory=list)  # the verbs the client sent, in order


class _Splitter:
    """Finds where each whole IMAP command ends in a byte stream (lines and literals)."""

    def __init__(self) -> None:
        self.pending = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """(offset in `data` just after the command, the command) for each command `data` completes."""
        base = len(self.pending)
        self.pending += data
        done: list[tuple[int, bytes]] = []
        used = 0
        while True:
            end = _command_end(self.pending, used)
            if end is None:
                break
            done.append((end - base, bytes(self.pending[used:end])))
            used = end
        del self.pending[:used]
        return done


def _command_end(buf: bytearray, start: int) -> int | None:
    at = start
    while True:
        eol = buf.find(b"\r\n", at)
        if eol < 0:
            return None
        literal = _LITERAL_AT_END.search(bytes(buf[at:eol]))
        if literal is None:
            return eol + 2
        at = eol + 2 + int(literal.group(1))
        if at > len(buf):
            return None


def verb(command: bytes) -> str:
    """The command's name, UID commands by their second word (UID MOVE is MOVE)."""
    words = command.split(b"\r\n", 1)[0].split(b" ")
    name = words[1] if len(words) > 1 else b""
    if name.upper() == b"UID" and len(words) > 2:
        name = words[2]
    return name.decode("ascii", "replace").upper()


def hide(line: bytes, names: set[bytes]) -> bytes:
    """The line with `names` taken out of a CAPABILITY list."""
    if b"CAPABILITY" not in line.upper():
        return line
    for name in names:
        line = re.sub(rb" " + re.escape(name) + rb"(?=[ \]\r])", b"", line, flags=re.IGNORECASE)
    return line


class CuttingProxy:
    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.cut_after: int | None = None  # per connection; None: never cut
        self.cut_on: set[str] = set()  # verbs whose answer is cut off (see the module's docstring)
        self.on_command: Callable[[], None] | None = None
        self.hide_capabilities: set[bytes] = set()
        self.watch_commands = False  # record each command's verb (Connection.commands) even with no cut
        self.connections: list[Connection] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept, name="cutting-proxy", daemon=True)
        self._thread.start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            for sock in list(self._open):
                _close(sock)

    def __enter__(self) -> CuttingProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                _close(client)
                continue
            server.settimeout(None)
            record = Connection()
            with self._lock:
                self.connections.append(record)
                self._open.update((client, server))
            budget = self.cut_after
            if self.cut_on or self.hide_capabilities or self.watch_commands:
                cut_on, hidden, action = set(self.cut_on), set(self.hide_capabilities), self.on_command
                threading.Thread(
                    target=self._commands, args=(client, server, record, cut_on, action), daemon=True
                ).start()
                threading.Thread(
                    target=self._answers, args=(server, client, record, hidden), daemon=True
                ).start()
                continue
            threading.Thread(target=self._pump, args=(client, server, None, None), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, budget, record), daemon=True).start()

    def cuts(self, since: int = 0) -> list[Connection]:
        """The connections cut after a command, from the `since`-th on."""
        with self._lock:
            return [c for c in self.connections[since:] if c.cut_command]

    def _commands(
        self,
        source: socket.socket,
        target: socket.socket,
        record: Connection,
        cut_on: set[str],
        action: Callable[[], None] | None,
    ) -> None:
        """Client to server, command by command; stop after the first one in `cut_on`."""
        splitter = _Splitter()
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                for end, command in splitter.feed(data):
                    record.commands.append(verb(command))
                    if verb(command) in cut_on:
                        record.cut_command = verb(command)
                        record.held_tag = command.split(b" ", 1)[0]
                        target.sendall(data[:end])
                        if action is not None:
                            action()
                            record.cut = True
                            return
                        return  # _answers cuts when the server's answer comes
                target.sendall(data)
        except OSError:
            pass
        finally:
            if record.cut_command is None or record.cut:
                self._close_pair(source, target)

    def _answers(
        self, source: socket.socket, target: socket.socket, record: Connection, hidden: set[bytes]
    ) -> None:
        """Server to client, line by line (literals untouched); withholds the answer to
        the command being cut, then cuts."""
        pending = bytearray()
        literal = 0  # bytes of a literal still to pass through untouched
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                record.from_server += data
                pending += data
                out = bytearray()
                while pending:
                    if literal:
                        take = pending[:literal]
                        out += take
                        literal -= len(take)
                        del pending[: len(take)]
                        continue
                    eol = pending.find(b"\r\n")
                    if eol < 0:
                        break
                    line = bytes(pending[: eol + 2])
                    del pending[: eol + 2]
                    if record.held_tag is not None and line.startswith(record.held_tag + b" "):
                        record.cut = True  # the server answered; the client never hears it
                        return
                    announced = _LITERAL_AT_END.search(line[:-2])
                    literal = int(announced.group(1)) if announced else 0
                    out += hide(line, hidden)
                if out and record.held_tag is None:
                    target.sendall(out)
        except OSError:
            pass
        finally:
            self._close_pair(source, target)

    def _close_pair(self, a: socket.socket, b: socket.socket) -> None:
        _close(a)
        _close(b)
        with self._lock:
            self._open.discard(a)
            self._open.discard(b)

    def _pump(
        self, source: socket.socket, target: socket.socket, budget: int | None, record: Connection | None
    ) -> None:
        """Copy source to target; `record` (server to client only) keeps the bytes and the cut."""
        try:
            while budget is None or budget > 0:
                data = source.recv(65536 if budget is None else min(65536, budget))
                if not data:
                    break
                if record is not None:
                    record.from_server += data
                target.sendall(data)
                if budget is not None:
                    budget -= len(data)
            if budget == 0 and record is not None:
                record.cut = True
        except OSError:
            pass
        finally:
            # Both ways at once: the client must not get a clean goodbye.
            _close(source)
            _close(target)
            with self._lock:
                self._open.discard(source)
                self._open.discard(target)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


def cut_inside_literal(stream: bytes) -> bool:
    """Did the stream end inside a literal ({n}CRLF followed by fewer than n bytes)?"""
    at = 0
    while True:
        match = _LITERAL.search(stream, at)
        if match is None:
            return False
        end = match.end() + int(match.group(1))
        if end > len(stream):
            return True
        at = end
