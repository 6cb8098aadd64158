"""Real faults: kill -9 of the poller at random moments, and the IMAP server dying mid-run.

The invariant after each: every message is recorded exactly once, its raw bytes
are in the store and match their sha256, and every message is filed; nothing is
deleted from the mailbox. The kill loop is short by default (CI) and full with INTAKE_FULL=1,
as the fault suite's (tests/faults/README.md): INTAKE_KILL_ITERATIONS rounds (4; full 20) of
INTAKE_KILL_MESSAGES messages each (16; full 25).
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import time
from collections import Counter

import pytest
from sqlalchemy import func, select

from intake import db
from intake.models import InboundMessage
from intake.store import BlobStore
from tests.faults.conftest import number
from tests.support.corpus import mixed
from tests.support.dovecot import Dovecot
from tests.support.fixtures import MakeEnv
from tests.support.intake_env import IntakeEnv

pytestmark = pytest.mark.dovecot

ITERATIONS = number("INTAKE_KILL_ITERATIONS", 4, 20)
PER_ROUND = number("INTAKE_KILL_MESSAGES", 16, 25)


def recorded_count(url: str) -> int:
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(InboundMessage)).scalar_one())
    finally:
        engine.dispose()


def all_mail(dovecot: Dovecot) -> dict[str, dict[int, bytes]]:
    with dovecot.client() as client:
        names = [n for flags, _, n in client.list_folders() if b"\\Noselect" not in flags]
    return {name: dovecot.fetch_all(name) for name in names}


def sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def same(raw: bytes) -> str:
    """What identifies a message appended and the same message served (the server's line ends)."""
    return sha(raw.replace(b"\r\n", b"\n"))


def check_invariant(
    dovecot: Dovecot, env: IntakeEnv, appended: list[bytes], server_killed: bool = False
) -> int:
    """Check what every fault leaves; return the second copies a killed server left (see below)."""
    entries = env.log_json()
    mail = all_mail(dovecot)
    served = Counter(sha(raw) for msgs in mail.values() for raw in msgs.values())
    held = Counter(same(raw) for msgs in mail.values() for raw in msgs.values())
    expected = Counter(same(raw) for raw in appended)
    # Nothing deleted: every appended message is still on the server.
    assert not expected - held, f"lost: {len(expected - held)} messages"
    extra = held - expected
    if server_killed:
        # Dovecot's MOVE on Maildir copies, then expunges: killed with SIGKILL between the two,
        # it leaves the message in the inbox and in its folder; the next poll moves it again,
        # and its folder holds it twice (docs/operators.md, "After an outage"). Only there.
        where: dict[str, set[str]] = {}  # the folders that hold each message
        known = {sha(raw): same(raw) for msgs in mail.values() for raw in msgs.values()}
        for folder, msgs in mail.items():
            for raw in msgs.values():
                where.setdefault(same(raw), set()).add(folder)
        filed_in: dict[str, set[str]] = {}
        for entry in entries:
            filed_in.setdefault(known.get(entry["sha256"], ""), set()).add(entry["filed_folder"])
        for digest in extra:
            assert where[digest] <= filed_in.get(digest, set()), (where[digest], filed_in.get(digest))
    else:
        assert not extra, f"copied twice: {len(extra)} messages"
    # Everything recorded exactly once and filed.
    assert len(entries) == len(appended)
    assert mail["INBOX"] == {}
    keys = Counter((e["uidvalidity"], e["uid"]) for e in entries)
    assert max(keys.values()) == 1
    ids = Counter(e["message_id"] for e in entries if e["status"] != "duplicate" and e["message_id"])
    assert max(ids.values()) == 1, [k for k, v in ids.items() if v > 1]
    store = BlobStore(env.data_dir)
    for entry in entries:
        assert entry["filed_folder"], entry
        assert sha(store.get(entry["sha256"])) == entry["sha256"]
        assert served[entry["sha256"]] >= 1
    return sum(extra.values())


def test_kill_9_at_random_moments(dovecot: Dovecot, make_env: MakeEnv) -> None:
    env = make_env(imap_extra="batch_messages = 10")
    rng = random.Random(int(os.environ.get("INTAKE_KILL_SEED", "20260430")))
    per_round = PER_ROUND
    appended: list[bytes] = []
    kills = 0
    for round_no in range(ITERATIONS):
        samples = mixed(per_round, start=round_no * per_round)
        dovecot.append_many("INBOX", [(s.raw, s.received_at) for s in samples])
        appended += [s.raw for s in samples]
        before = recorded_count(env.database_url)
        target = before + rng.randrange(0, per_round)
        process = env.popen("poll", "--once")
        # Kill once the run has recorded a random number of this round's messages,
        # plus a random few milliseconds, so kills land between any two steps.
        deadline = time.monotonic() + 60
        while (
            process.poll() is None
            and recorded_count(env.database_url) < target
            and time.monotonic() < deadline
        ):
            time.sleep(0.003)
        time.sleep(rng.random() * 0.02)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            kills += 1
        process.communicate(timeout=30)
        env.run("poll", "--once", check=True)
        check_invariant(dovecot, env, appended)
    # Most kills must have landed while the run was working, or the test proves little.
    assert kills >= ITERATIONS * 0.75, kills


def test_imap_server_stopped_mid_run(dovecot: Dovecot, make_env: MakeEnv) -> None:
    env = make_env(imap_extra="batch_messages = 10")
    samples = mixed(200)
    dovecot.append_many("INBOX", [(s.raw, s.received_at) for s in samples])
    process = env.popen("poll", "--once")
    deadline = time.monotonic() + 60
    while recorded_count(env.database_url) < 30 and time.monotonic() < deadline:
        time.sleep(0.005)
    dovecot.kill()
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("intake: ")]
    assert len(errors) == 1, stderr
    assert f"IMAP server 127.0.0.1:{dovecot.port}" in errors[0] and "failed" in errors[0]
    assert 30 <= recorded_count(env.database_url) < 200

    # While it is down, a run fails the same clear way and records nothing.
    down = env.run("poll", "--once")
    assert down.returncode == 1 and "the connection was refused" in down.stderr
    assert down.stderr.strip().count("\n") == 0

    dovecot.start()
    env.run("poll", "--once", check=True)
    check_invariant(dovecot, env, [s.raw for s in samples], server_killed=True)
