"""Running for real: two `intake run` replicas on one PostgreSQL, and servers dying under the service."""

from __future__ import annotations

import email
import io
import os
import signal
import subprocess
import time
import zipfile
from collections import Counter
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from intake.samples import CONTRIBUTORS, DOCX, Contributor, make_docx, make_message
from tests.support.databases import create_pg_database, drop_pg_database
from tests.support.dovecot import Dovecot
from tests.support.intake_env import IntakeEnv, config_on
from tests.support.smtp import SmtpSink
from tests.support.waiting import wait_until

pytestmark = pytest.mark.dovecot

REPLICA_MESSAGES = int(os.environ.get("INTAKE_REPLICA_MESSAGES", "1000"))


@pytest.fixture
def pg_url() -> object:
    url = create_pg_database()
    from intake import db

    db.upgrade(url)
    yield url
    drop_pg_database(url)


def distinct(docx: bytes, i: int) -> bytes:
    """The document with bytes of its own (a zip comment), so that it is a new input and
    not a resend of an earlier message's file (issue 11: a resend is not numbered again)."""
    buffer = io.BytesIO(docx)
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.comment = f"input {i}".encode()
    return buffer.getvalue()


def submissions(env: IntakeEnv, count: int, start: int = 0) -> list[tuple[bytes, object]]:
    event = env.settings().event
    docs = [make_docx(event, f"Input topic {k}", "Org", CONTRIBUTORS[k], "An abstract.") for k in range(6)]
    out = []
    for i in range(start, start + count):
        base = CONTRIBUTORS[i % len(CONTRIBUTORS)]
        who = Contributor(base.name, f"c{i}@example{i % 97}.org", base.organization, base.country)
        out.append(
            (
                make_message(
                    who,
                    event.address,
                    f"Input {i}",
                    f"Message {i}.",
                    [(f"input-{i}.docx", DOCX, distinct(docs[i % len(docs)], i))],
                ),
                event.deadline - timedelta(days=2),
            )
        )
    return out


def configure(env: IntakeEnv, service: str, imap: str = "") -> None:
    text = env.config_path.read_text().replace("[service]", "[service]\n" + service, 1)
    env.config_path.write_text(text.replace("[imap]", "[imap]\n" + imap, 1))


def count_rows(url: str, table: str) -> int:
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]


def lock_holder_pid(url: str) -> int | None:
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        row = conn.execute(
            # This test's database only: pg_locks is the whole cluster's, where other
            # tests' services may hold their own poller locks at the same moment.
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()
    return int(row[0].split(":")[1]) if row and row[0].startswith("intake:") else None


def stop(process: subprocess.Popen[str], log: Path) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    return log.read_text(encoding="utf-8")


def test_two_replicas_share_the_work_and_survive_the_lock_holder_dying(
    dovecot: Dovecot, pg_url: str, tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    env = config_on(dovecot, tmp_path, pg_url, smtp_port=smtp_sink.port)
    configure(env, "poll_interval = 2\noutbox_interval = 1", "batch_messages = 20")
    # A reply the killed replica had claimed is taken over once its claim lapses.
    env.config_path.write_text(env.config_path.read_text().replace("[smtp]", "[smtp]\nclaim_lease = 15", 1))
    dovecot.append_many("INBOX", submissions(env, REPLICA_MESSAGES))
    logs = [tmp_path / "replica-1.log", tmp_path / "replica-2.log"]
    replicas = [env.popen("run", log=logs[0]), env.popen("run", log=logs[1])]
    try:
        wait_until(lambda: count_rows(pg_url, "inbound_message") >= REPLICA_MESSAGES // 5, 120)
        holder = lock_holder_pid(pg_url)
        assert holder in (replicas[0].pid, replicas[1].pid), (holder, replicas[0].pid, replicas[1].pid)
        os.kill(holder, signal.SIGKILL)
        survivor = replicas[1] if holder == replicas[0].pid else replicas[0]
        wait_until(
            lambda: count_rows(pg_url, "inbound_message") == REPLICA_MESSAGES,
            300,
            "the surviving replica did not finish the work",
        )
        wait_until(lambda: len(smtp_sink.messages) >= REPLICA_MESSAGES, 300, "not every reply was sent")
        time.sleep(3)  # anything sent twice would arrive now
        assert survivor.poll() is None
    finally:
        texts = [stop(replica, log) for replica, log in zip(replicas, logs, strict=True)]
    for text in texts:
        assert "Traceback" not in text, text[-3000:]
    entries = env.log_json()
    assert len(entries) == REPLICA_MESSAGES
    assert Counter(e["status"] for e in entries) == {"accepted": REPLICA_MESSAGES}
    numbers = [d["number"] for e in entries for d in e["documents"]]
    assert len(set(numbers)) == REPLICA_MESSAGES
    sent_ids = Counter(email.message_from_bytes(m.data)["Message-ID"] for m in smtp_sink.messages)
    # One reply per message; a duplicate is possible only in the documented window (a kill
    # between the server's 250 and the commit), and the kill above hit the poller's process.
    duplicates = sum(n - 1 for n in sent_ids.values())
    assert len(sent_ids) == REPLICA_MESSAGES
    assert duplicates <= 1
    assert dovecot.uids("INBOX") == []


def _sent_rows(url: str) -> int:
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        return int(conn.execute("SELECT count(*) FROM reply WHERE status = 'sent'").fetchone()[0])  # type: ignore[index]


def _pg(url: str, sql: str) -> None:
    admin = url.rsplit("/", 1)[0] + "/test"
    with psycopg.connect(admin.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
        conn.execute(sql)


def test_the_service_outlives_imap_smtp_and_database_outages(
    dovecot: Dovecot, pg_url: str, tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    env = config_on(dovecot, tmp_path, pg_url, smtp_port=smtp_sink.port)
    configure(env, "poll_interval = 1\noutbox_interval = 1", "batch_messages = 10")
    total = 300
    dovecot.append_many("INBOX", submissions(env, total // 3))
    log = tmp_path / "service.log"
    service = env.popen("run", log=log)
    database = pg_url.rsplit("/", 1)[1]
    try:
        wait_until(lambda: count_rows(pg_url, "inbound_message") >= 20, 120)
        dovecot.kill()  # 1. the IMAP server dies mid-run
        time.sleep(3)
        dovecot.start()
        dovecot.append_many("INBOX", submissions(env, total // 3, start=1000))
        smtp_sink.stop()  # 2. the SMTP server goes away
        time.sleep(3)
        smtp_sink.start()
        wait_until(lambda: count_rows(pg_url, "inbound_message") >= total * 2 // 3 - 20, 180)
        dovecot.append_many("INBOX", submissions(env, total // 3, start=2000))
        # 3. the database: every connection killed, and no new ones for a few seconds.
        _pg(pg_url, f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS false')
        _pg(pg_url, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'")
        time.sleep(4)
        _pg(pg_url, f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS true')
        wait_until(lambda: count_rows(pg_url, "inbound_message") == total, 240, "not all recorded")
        wait_until(lambda: len(smtp_sink.messages) >= total, 240, "not every reply was delivered")
        wait_until(lambda: _sent_rows(pg_url) == total, 60, "a reply sent is not recorded as sent")
        time.sleep(3)
        assert service.poll() is None, "the service must never exit on an outage"
    finally:
        _pg(pg_url, f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS true')
        stderr = stop(service, log)
    assert service.returncode == 0, stderr[-2000:]
    assert "Traceback" not in stderr
    entries = env.log_json()
    assert len(entries) == total and len({(e["uidvalidity"], e["uid"]) for e in entries}) == total
    sent_ids = Counter(email.message_from_bytes(m.data)["Message-ID"] for m in smtp_sink.messages)
    assert len(sent_ids) == total and max(sent_ids.values()) == 1
    assert {r["status"] for e in entries for r in e["replies"]} == {"sent"}
