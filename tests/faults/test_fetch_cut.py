"""The IMAP connection cut in the middle of a FETCH literal.

`intake poll --once` talks to Dovecot through a proxy (tests/faults/proxy.py)
that closes both sockets after a random number of bytes from the server. Most
cuts fall inside a message's literal: the client holds part of a message. It
must record none of it: the run fails in one clear line, whatever it recorded
is a whole message that is really in the mailbox, and the next run completes.
"""

from __future__ import annotations

import random

import pytest

from tests.faults.conftest import Scale, one_line_error, report
from tests.faults.corpus import mail
from tests.faults.ledger import Ledger
from tests.faults.proxy import CuttingProxy, cut_inside_literal

pytestmark = pytest.mark.dovecot

PER_ROUND = 10


def test_connection_cut_inside_a_fetch_literal(
    proxied: tuple[Ledger, CuttingProxy], scale: Scale, request: pytest.FixtureRequest
) -> None:
    ledger, proxy = proxied
    rng = random.Random(f"{scale.seed}/{request.node.name}")
    inside = 0
    for n in range(scale.cuts):
        ledger.append(mail(PER_ROUND, start=n * PER_ROUND))
        # Anywhere from the greeting to well into the new messages (about 60 KB each).
        proxy.cut_after = rng.randrange(500, PER_ROUND * 60_000)
        seen = len(proxy.connections)
        result = ledger.env.run("poll", "--once")
        assert "Traceback" not in result.stderr, result.stderr
        cut = [c for c in proxy.connections[seen:] if c.cut]
        if result.returncode == 0:
            assert not cut[:1] or not cut_inside_literal(bytes(cut[0].from_server))
            ledger.tally.missed += 1
        else:
            assert result.returncode == 1 and cut, result.stderr
            [error] = one_line_error(result.stderr)
            assert f"IMAP server 127.0.0.1:{proxy.port}" in error and "failed" in error, error
            ledger.note_fault()
            inside += cut_inside_literal(bytes(cut[0].from_server))
        # No piece of a message is ever recorded: everything recorded is whole.
        ledger.check(complete=False)
    proxy.cut_after = None
    ledger.env.run("poll", "--once", check=True)
    ledger.check()
    report(request.node.name, f"{inside} of {scale.cuts} cuts inside a literal; {ledger.tally.line()}")
    assert inside >= 1, "no cut fell inside a FETCH literal: the test proved nothing"
