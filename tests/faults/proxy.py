"""A TCP proxy on loopback that cuts a connection after N bytes from the server.

It forwards each client connection to the upstream server (Dovecot) and,
once `cut_after` bytes of server-to-client traffic have gone through on that
connection, closes both sockets at once: the client sees the server vanish in
the middle of whatever it was reading, typically a FETCH literal. What the
server sent on each connection is kept, so a test can tell where the cut fell.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from dataclasses import dataclass, field

_LITERAL = re.compile(rb"\{(\d+)\}\r\n")


@dataclass
class Connection:
    from_server: bytearray = field(default_factory=bytearray)
    cut: bool = False


class CuttingProxy:
    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.cut_after: int | None = None  # per connection; None: never cut
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
            threading.Thread(target=self._pump, args=(client, server, None, None), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, budget, record), daemon=True).start()

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
