"""The service's promise after an outage (docs/operators.md, "After an outage").

`intake run` files mail while Dovecot is killed (SIGKILL, every process) at a
random moment: most often with messages recorded and not yet moved, sometimes
in the middle of a MOVE, a CREATE or the APPEND of a reply's copy to Sent.
Dovecot comes back; every message must then be recorded, filed and answered
within the documented recovery time: `max_backoff` (set to MAX_BACKOFF here)
plus the time one poll takes, for which a loaded machine is allowed
ONE_POLL seconds. /healthz must say 503 while the server is away and 200 once
mail flows again. Rounds: INTAKE_RECOVERY_ROUNDS (3 short, 20 full).
"""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from intake.demo import free_port
from intake.models import InboundMessage
from tests.faults.conftest import Scale, reached, report, start
from tests.faults.corpus import mail
from tests.faults.ledger import Ledger
from tests.support.waiting import wait_until

pytestmark = pytest.mark.dovecot

MAX_BACKOFF = 4  # seconds; [service] max_backoff of the service under test
ONE_POLL = 60  # seconds a poll of one round's mail may take on a loaded two-core machine
PER_ROUND = 12
BATCH = 3  # [imap] batch_messages: a round is recorded in PER_ROUND / BATCH commits


def unfiled(ledger: Ledger) -> int:
    with ledger.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(InboundMessage).where(InboundMessage.filed_at.is_(None))
            ).scalar_one()
        )


def test_dovecot_killed_during_filing_then_back(
    ledger: Ledger, scale: Scale, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    rng = random.Random(f"{scale.seed}/{request.node.name}")
    port = free_port()
    config = ledger.env.config_path
    text = config.read_text().replace(
        "[service]", f"[service]\nmax_backoff = {MAX_BACKOFF}\nmetrics_port = {port}", 1
    )
    # Small batches, so a round's mail is recorded in several steps and a kill can
    # land between them (one batch of a whole round is recorded in one commit).
    assert "batch_messages = 10" in text, text
    config.write_text(text.replace("batch_messages = 10", f"batch_messages = {BATCH}", 1))

    def healthz() -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())
        except OSError as exc:
            return 0, {"error": str(exc)}

    limit = MAX_BACKOFF + ONE_POLL
    service = start(ledger.env, "run", log_dir=tmp_path / "logs")
    recoveries: list[float] = []
    with_work_in_hand = 0
    try:
        for n in range(scale.recoveries):
            before = ledger.recorded()
            ledger.append(mail(PER_ROUND, start=n * PER_ROUND))
            # The moment of the kill: the first round's comes as soon as the first batch is
            # recorded, so at least one kill surely lands with mail in hand (the rest still
            # in the mailbox, the batch not yet filed); later rounds' at a random moment:
            # recording, filing, or after.
            target = before + (1 if n == 0 else rng.randrange(1, PER_ROUND))
            assert reached(ledger.recorded, target, service), service.stderr()
            if n > 0:
                time.sleep(rng.random() * 0.3)
            with_work_in_hand += ledger.recorded() < len(ledger.mail) or unfiled(ledger) > 0
            ledger.dovecot.kill()
            ledger.note_fault(smtp=False)
            wait_until(
                lambda: healthz()[0] == 503,
                timeout=60,
                message=lambda: f"/healthz with Dovecot down: {healthz()}\n{service.stderr()[-3000:]}",
            )
            assert service.alive(), service.stderr()

            ledger.dovecot.start()
            back = time.monotonic()
            wait_until(
                ledger.settle,
                timeout=limit,
                message=lambda n=n: (
                    f"round {n}: mail not all recorded, filed and answered {limit} s after Dovecot "
                    f"came back ({ledger.recorded()} of {len(ledger.mail)} recorded, {unfiled(ledger)} "
                    f"unfiled)\n{service.stderr()[-3000:]}"
                ),
                every=0.05,
            )
            recoveries.append(time.monotonic() - back)
            wait_until(
                lambda: healthz()[0] == 200,
                timeout=limit,
                message=lambda: f"/healthz with mail flowing again: {healthz()}",
            )
            ledger.check(copied_twice=True)  # a kill during a MOVE: see Ledger.check
    finally:
        code = service.stop()
    assert code == 0 and "Traceback" not in service.stderr(), service.stderr()
    ledger.check(copied_twice=True)
    report(
        request.node.name,
        f"{len(recoveries)} kills ({with_work_in_hand} with mail recorded and not yet filed); "
        f"everything filed {max(recoveries):.1f} s at most after Dovecot was back "
        f"(median {sorted(recoveries)[len(recoveries) // 2]:.1f} s; max_backoff {MAX_BACKOFF} s); "
        f"{ledger.dovecot.stale_locks_removed} stale lock files removed at restarts; " + ledger.tally.line(),
    )
    assert with_work_in_hand >= 1, "no kill landed with mail in hand: the test proved nothing"
