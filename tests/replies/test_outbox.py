"""The outbox against a real SMTP server (aiosmtpd) and real databases.

Every test runs on SQLite and on PostgreSQL (the `database` fixture).
"""

from __future__ import annotations

import dataclasses
import email
import re
import shutil
import ssl
import subprocess
import threading
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import aiosmtplib
import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from intake.config import EventSettings, Settings
from intake.db import make_engine, make_sessionmaker
from intake.domain import ReplyStatus
from intake.models import Base, Reply
from intake.replies.compose import ReplyContext, compose_reply
from intake.replies.outbox import (
    _CLAIM,
    BACKOFF_BASE,
    BACKOFF_JITTER,
    _claim_next,
    deliver_pending,
    is_transient,
    retry_failed,
)
from tests.replies.conftest import Clock, Database, settings_for
from tests.support.smtp import SmtpSink


def add_replies(db: Database, event: EventSettings, count: int, now: datetime, **row: object) -> list[int]:
    """Pending replies as the record stage writes them: composed, with their bytes."""
    ids = []
    with db.sessions() as session, session.begin():
        for n in range(count):
            context = ReplyContext(
                recipient=f"contributor{n}@example.org",
                received_at=now,
                subject=f"Input {n}",
                message_id=f"<input.{n}@example.org>",
            )
            composed = compose_reply("late_notice", context, event, now)
            columns: dict[str, object] = {
                "event": event.id,
                "kind": "late_notice",
                "recipient": composed.recipient,
                "subject": composed.subject,
                "body_text": composed.body_text,
                "body_html": composed.body_html,
                "rfc_message_id": composed.rfc_message_id,
                "raw": composed.raw,
                "status": ReplyStatus.PENDING,
            }
            reply = Reply(**(columns | row))
            session.add(reply)
            session.flush()
            ids.append(reply.id)
    return ids


def rows(db: Database) -> dict[int, Reply]:
    with db.sessions() as session:
        return {r.id: r for r in session.scalars(select(Reply).order_by(Reply.id))}


def message_ids(sink: SmtpSink) -> list[str]:
    return [str(email.message_from_bytes(m.data)["Message-ID"]) for m in sink.received()]


# --- the happy path --------------------------------------------------------------------


def test_delivers_each_pending_reply_once(database: Database, smtp_sink: SmtpSink, clock: Clock) -> None:
    settings = settings_for(smtp_sink)
    ids = add_replies(database, settings.event, 3, clock.now)
    report = deliver_pending(database.sessions, settings, "worker-a", clock)
    assert (report.sent, report.retried, report.failed) == (3, 0, 0)
    received = smtp_sink.received()
    stored = rows(database)
    assert [m.rcpt_tos for m in received] == [(stored[i].recipient,) for i in ids]
    assert {m.mail_from for m in received} == {"tsbjcamv@itu.int"}
    assert [m.data for m in received] == [stored[i].raw for i in ids]
    for reply in stored.values():
        assert reply.status == ReplyStatus.SENT
        assert reply.sent_at == clock.now
        assert reply.attempts == 1 and reply.last_error is None
        assert reply.claimed_by == "worker-a"
    again = deliver_pending(database.sessions, settings, "worker-a", clock)
    assert again.sent == 0 and len(smtp_sink.received()) == 3


def test_marking_one_reply_sent_claims_the_next_in_the_same_commit(
    database: Database, smtp_sink: SmtpSink, clock: Clock
) -> None:
    """A run of n replies commits n + 2 times (stale claims, the first claim, then for each a
    "sent" with the next claim), not 2n + 2: and each reply is still marked sent the moment the
    server has it, in a commit of its own."""
    settings = settings_for(smtp_sink)
    add_replies(database, settings.event, 6, clock.now)
    commits: list[int] = []  # replies the SMTP server had at each commit
    listen = lambda _connection: commits.append(len(smtp_sink.received()))  # noqa: E731
    sa_event.listen(database.engine, "commit", listen)
    try:
        report = deliver_pending(database.sessions, settings, "worker-a", clock)
    finally:
        sa_event.remove(database.engine, "commit", listen)
    assert report.sent == 6
    assert len(commits) == 6 + 2, commits
    assert commits[2:8] == [1, 2, 3, 4, 5, 6], commits  # one commit after each 250, none between
    assert all(r.status == ReplyStatus.SENT for r in rows(database).values())

    # With `limit`, the last reply's commit claims nothing: the rest waits for the next run.
    add_replies(database, settings.event, 3, clock.now)
    assert deliver_pending(database.sessions, settings, "worker-a", clock, limit=2).sent == 2
    with database.sessions() as session:
        waiting = session.scalars(select(Reply.status).where(Reply.status != ReplyStatus.SENT)).all()
    assert waiting == [ReplyStatus.PENDING]


def test_waits_for_next_attempt_and_ignores_other_events(
    database: Database, smtp_sink: SmtpSink, clock: Clock
) -> None:
    settings = settings_for(smtp_sink)
    [later] = add_replies(
        database, settings.event, 1, clock.now, next_attempt_at=clock.now + timedelta(minutes=5)
    )
    with database.sessions() as session, session.begin():
        other = rows(database)[later]
        session.add(
            Reply(
                event="another-event",
                kind="late_notice",
                recipient="x@example.org",
                subject="s",
                body_text="b",
                rfc_message_id="<other@example.org>",
                raw=other.raw,
                status=ReplyStatus.PENDING,
            )
        )
    assert deliver_pending(database.sessions, settings, "w", clock).sent == 0
    clock.advance(timedelta(minutes=5))
    assert deliver_pending(database.sessions, settings, "w", clock).sent == 1
    assert len(smtp_sink.received()) == 1
    assert [r.status for r in rows(database).values()] == [ReplyStatus.SENT, ReplyStatus.PENDING]


# --- failures ------------------------------------------------------------------------------


def test_server_down_then_back_delivers_each_exactly_once(
    database: Database, smtp_sink: SmtpSink, clock: Clock
) -> None:
    settings = settings_for(smtp_sink)
    ids = add_replies(database, settings.event, 3, clock.now)
    smtp_sink.stop()
    report = deliver_pending(database.sessions, settings, "w", clock)
    assert (report.sent, report.retried, report.failed) == (0, 0, 0)
    stored = rows(database)
    assert all(r.status == ReplyStatus.PENDING for r in stored.values())
    first = stored[ids[0]]
    # A server that is down is not the reply's fault: no attempt counted, no backoff.
    assert first.attempts == 0 and first.last_error and "Connect" in first.last_error
    assert first.next_attempt_at is None or first.next_attempt_at <= clock.now
    assert first.claimed_by is None
    assert [stored[i].attempts for i in ids[1:]] == [0, 0]  # untouched: the run stopped

    smtp_sink.start()  # the same port
    assert deliver_pending(database.sessions, settings, "w", clock).sent == 3
    assert deliver_pending(database.sessions, settings, "w", clock).sent == 0
    assert sorted(message_ids(smtp_sink)) == sorted(r.rfc_message_id for r in rows(database).values())
    assert all(r.status == ReplyStatus.SENT for r in rows(database).values())


def test_4xx_is_retried_with_backoff(database: Database, smtp_sink: SmtpSink, clock: Clock) -> None:
    settings = settings_for(smtp_sink)
    ids = add_replies(database, settings.event, 2, clock.now)
    smtp_sink.fail_next(1, 451, "4.7.1 Greylisted, please try again later")
    report = deliver_pending(database.sessions, settings, "w", clock)
    assert (report.sent, report.retried, report.failed) == (1, 1, 0)
    first = rows(database)[ids[0]]
    assert first.status == ReplyStatus.PENDING and first.attempts == 1
    assert first.last_error == "451 4.7.1 Greylisted, please try again later"
    assert first.next_attempt_at is not None
    wait = first.next_attempt_at - clock.now
    assert BACKOFF_BASE * (1 - BACKOFF_JITTER) <= wait <= BACKOFF_BASE * (1 + BACKOFF_JITTER)
    assert first.claimed_at is None
    clock.advance(wait)
    assert deliver_pending(database.sessions, settings, "w", clock).sent == 1
    assert rows(database)[ids[0]].status == ReplyStatus.SENT
    assert rows(database)[ids[0]].attempts == 2
    assert len(smtp_sink.received()) == 2


def test_backoff_grows_and_gives_up(database: Database, smtp_sink: SmtpSink, clock: Clock) -> None:
    settings = settings_for(smtp_sink)
    [reply_id] = add_replies(database, settings.event, 1, clock.now)
    smtp_sink.fail_next(3, 421, "4.3.2 Service shutting down")
    waits = []
    for _ in range(2):
        deliver_pending(database.sessions, settings, "w", clock, max_attempts=3)
        row = rows(database)[reply_id]
        assert row.next_attempt_at is not None
        waits.append(row.next_attempt_at - clock.now)
        clock.advance(waits[-1])
    assert waits[1] > waits[0] * 1.3  # doubled, give or take the jitter
    report = deliver_pending(database.sessions, settings, "w", clock, max_attempts=3)
    assert report.failed == 1
    row = rows(database)[reply_id]
    assert row.status == ReplyStatus.FAILED and row.attempts == 3
    assert row.last_error == "gave up after 3 attempts: 421 4.3.2 Service shutting down"
    assert smtp_sink.received() == []


def test_5xx_fails_with_the_servers_text(database: Database, smtp_sink: SmtpSink, clock: Clock) -> None:
    settings = settings_for(smtp_sink)
    ids = add_replies(database, settings.event, 2, clock.now)
    smtp_sink.fail_next(1, 554, "5.7.1 Message rejected as spam by policy")
    report = deliver_pending(database.sessions, settings, "w", clock)
    assert (report.sent, report.retried, report.failed) == (1, 0, 1)
    failed = rows(database)[ids[0]]
    assert failed.status == ReplyStatus.FAILED
    assert failed.last_error == "554 5.7.1 Message rejected as spam by policy"
    assert failed.attempts == 1 and failed.sent_at is None
    clock.advance(timedelta(days=1))
    assert deliver_pending(database.sessions, settings, "w", clock).sent == 0  # failed stays failed

    assert retry_failed(database.sessions) == 1
    assert deliver_pending(database.sessions, settings, "w", clock).sent == 1
    assert rows(database)[ids[0]].status == ReplyStatus.SENT
    assert len(smtp_sink.received()) == 2
    assert retry_failed(database.sessions) == 0


def test_refused_recipient(database: Database, smtp_sink: SmtpSink, clock: Clock) -> None:
    settings = settings_for(smtp_sink)
    ids = add_replies(database, settings.event, 3, clock.now)
    smtp_sink.refuse("contributor0@example.org", 550, "5.1.1 <contributor0@example.org>: unknown")
    smtp_sink.refuse("contributor1@example.org", 450, "4.2.1 Mailbox busy")
    report = deliver_pending(database.sessions, settings, "w", clock)
    assert (report.sent, report.retried, report.failed) == (1, 1, 1)
    stored = rows(database)
    assert stored[ids[0]].status == ReplyStatus.FAILED
    assert stored[ids[0]].last_error == (
        "recipient refused: contributor0@example.org: 550 5.1.1 <contributor0@example.org>: unknown"
    )
    assert stored[ids[1]].status == ReplyStatus.PENDING
    assert stored[ids[2]].status == ReplyStatus.SENT


def test_reply_without_bytes_fails_without_sending(
    database: Database, smtp_sink: SmtpSink, clock: Clock
) -> None:
    settings = settings_for(smtp_sink)
    [reply_id] = add_replies(database, settings.event, 1, clock.now, raw=None)
    assert deliver_pending(database.sessions, settings, "w", clock).failed == 1
    assert rows(database)[reply_id].last_error == "no composed message to send"
    assert smtp_sink.received() == []


# --- crashed senders ------------------------------------------------------------------------


def test_stuck_sending_rows_come_back_after_the_lease(
    database: Database, smtp_sink: SmtpSink, clock: Clock
) -> None:
    settings = settings_for(smtp_sink)
    crashed, busy = add_replies(database, settings.event, 2, clock.now)
    with database.sessions() as session, session.begin():
        for reply_id, ago in ((crashed, timedelta(hours=1)), (busy, timedelta(minutes=1))):
            row = session.get(Reply, reply_id)
            assert row is not None
            row.status, row.claimed_by, row.claimed_at = ReplyStatus.SENDING, "dead", clock.now - ago
    report = deliver_pending(database.sessions, settings, "w", clock)
    assert (report.reclaimed, report.sent) == (1, 1)
    stored = rows(database)
    assert stored[crashed].status == ReplyStatus.SENT and stored[crashed].claimed_by == "w"
    assert stored[busy].status == ReplyStatus.SENDING and stored[busy].claimed_by == "dead"


# --- authentication and TLS ------------------------------------------------------------------


def test_logs_in_when_a_user_is_set(database: Database, clock: Clock) -> None:
    with SmtpSink(credentials=("tsbjcamv@itu.int", "s3cret pass")) as sink:
        good = settings_for(sink, INTAKE_SMTP_USER="tsbjcamv@itu.int", INTAKE_SMTP_PASSWORD="s3cret pass")
        add_replies(database, good.event, 1, clock.now)
        assert deliver_pending(database.sessions, good, "w", clock).sent == 1
        assert sink.logins and sink.logins[0].endswith(":tsbjcamv@itu.int")

        bad = settings_for(sink, INTAKE_SMTP_USER="tsbjcamv@itu.int", INTAKE_SMTP_PASSWORD="wrong")
        [reply_id] = add_replies(database, bad.event, 1, clock.now)
        report = deliver_pending(database.sessions, bad, "w", clock)
        assert report.failed == 1
        error = rows(database)[reply_id].last_error or ""
        assert error.startswith("535") and "wrong" not in error
        assert len(sink.received()) == 1


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (made with the openssl tool)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_tls_certificate_is_verified(
    database: Database, clock: Clock, certificate: tuple[Path, Path], mode: str
) -> None:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    with SmtpSink(tls_context=context, implicit_tls=mode == "ssl") as sink:
        untrusted = settings_for(sink, INTAKE_SMTP_TLS=mode)
        [first] = add_replies(database, untrusted.event, 1, clock.now)
        assert deliver_pending(database.sessions, untrusted, "w", clock).failed == 1
        assert "certificate" in (rows(database)[first].last_error or "").lower()
        assert sink.received() == []

        trusted = settings_for(sink, INTAKE_SMTP_TLS=mode, INTAKE_SMTP_CA_FILE=str(cert))
        add_replies(database, trusted.event, 1, clock.now)
        assert deliver_pending(database.sessions, trusted, "w", clock).sent == 1
        assert len(sink.received()) == 1


# --- concurrency ------------------------------------------------------------------------------


def test_two_senders_never_send_the_same_reply(database: Database, smtp_sink: SmtpSink, clock: Clock) -> None:
    settings: Settings = settings_for(smtp_sink)
    add_replies(database, settings.event, 40, clock.now)
    smtp_sink.slow_down(0.005)  # keep both senders busy at the same time
    start = threading.Barrier(2)
    reports = {}
    errors: list[BaseException] = []

    def run(worker: str) -> None:
        engine = make_engine(database.url)  # each sender its own engine, as two processes
        try:
            start.wait()
            reports[worker] = deliver_pending(make_sessionmaker(engine), settings, worker, clock)
        except BaseException as exc:
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=run, args=(name,)) for name in ("alpha", "beta")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    ids = message_ids(smtp_sink)
    assert len(ids) == 40 and len(set(ids)) == 40
    assert sum(r.sent for r in reports.values()) == 40
    claimed = Counter(r.claimed_by for r in rows(database).values())
    assert all(r.status == ReplyStatus.SENT for r in rows(database).values())
    assert claimed["alpha"] > 0 and claimed["beta"] > 0, claimed  # they really overlapped


def test_postgres_claim_skips_rows_locked_by_another_sender(
    postgres_url: str, clock: Clock, event: EventSettings
) -> None:
    # Row locks are PostgreSQL's; on SQLite the conditional UPDATE decides (next test).
    engine = make_engine(postgres_url)
    Base.metadata.create_all(engine)
    database = Database(postgres_url, engine, make_sessionmaker(engine))
    try:
        _skips_locked_rows(database, clock, event)
    finally:
        Base.metadata.drop_all(engine)
        engine.dispose()


def _skips_locked_rows(database: Database, clock: Clock, event: EventSettings) -> None:
    first, second = add_replies(database, event, 2, clock.now)
    with Session(database.engine) as holder, holder.begin():
        locked = holder.scalars(
            select(Reply).where(Reply.id == first).with_for_update()
        ).one()  # another sender is in the middle of claiming this row
        job = _claim_next(database.sessions, event.id, "w", clock.now)
        assert job is not None and job.id == second  # skipped, not waited for
        assert _claim_next(database.sessions, event.id, "w", clock.now) is None
        assert locked.status == ReplyStatus.PENDING


def test_a_claim_reads_only_past_what_its_run_has_sent(
    database: Database, clock: Clock, event: EventSettings
) -> None:
    """Each claim of a run looks past the reply the run claimed last, whatever the statistics
    say: without the bound, PostgreSQL walked the primary key over every reply the run had
    just sent (1,800 pages a claim at 900 sent of 1,000), and a run's cost grew as n²."""
    ids = add_replies(database, event, 1000, clock.now)
    with database.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE reply")  # statistics from before the run: all pending
        conn.execute(update(Reply).where(Reply.id.in_(ids[:900])).values(status=ReplyStatus.SENT))
    values = {
        "of_event": event.id,
        "due_by": clock.now,
        "worker": "w",
        "claimed": clock.now,
        "after": ids[899],
    }
    with database.engine.connect() as conn:
        compiled = _CLAIM.compile(dialect=conn.dialect)
        params = compiled.construct_params(values)
        if conn.dialect.name == "postgresql":
            plan = "\n".join(
                row[0] for row in conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {compiled}", params)
            )
            conn.rollback()
            pages = [int(n) for n in re.findall(r"shared hit=(\d+)", plan)]
            assert pages and max(pages) < 60, plan
        else:
            positional = tuple(str(params[name]) for name in compiled.positiontup or ())
            plan = "\n".join(
                str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", positional)
            )
            assert re.search(r"\b(id|rowid)>\?", plan), plan
    job = _claim_next(database.sessions, event.id, "w", clock.now, after=ids[899])
    assert job is not None and job.id == ids[900]


def test_a_runs_first_claim_finds_the_oldest_pending_reply_by_its_index(
    postgres_url: str, clock: Clock, event: EventSettings
) -> None:
    """At a run's start (nothing to look past), `ix_reply_due` (event, status, id) finds the
    oldest pending reply once the statistics know most replies are sent."""
    engine = make_engine(postgres_url)
    Base.metadata.create_all(engine)
    database = Database(postgres_url, engine, make_sessionmaker(engine))
    try:
        ids = add_replies(database, event, 1000, clock.now)
        with engine.begin() as conn:
            conn.execute(update(Reply).where(Reply.id.in_(ids[:900])).values(status=ReplyStatus.SENT))
            conn.exec_driver_sql("ANALYZE reply")
        values = {"of_event": event.id, "due_by": clock.now, "worker": "w", "claimed": clock.now, "after": 0}
        with engine.connect() as conn:
            compiled = _CLAIM.compile(dialect=conn.dialect)
            plan = "\n".join(
                row[0]
                for row in conn.exec_driver_sql(f"EXPLAIN {compiled}", compiled.construct_params(values))
            )
        assert "Index Scan using ix_reply_due" in plan and "Sort" not in plan, plan
    finally:
        Base.metadata.drop_all(engine)
        engine.dispose()


def test_claim_is_conditional(database: Database, clock: Clock, event: EventSettings) -> None:
    [only] = add_replies(database, event, 1, clock.now)
    job = _claim_next(database.sessions, event.id, "alpha", clock.now)
    assert job is not None and job.id == only
    assert _claim_next(database.sessions, event.id, "beta", clock.now) is None
    row = rows(database)[only]
    assert (row.status, row.claimed_by, row.claimed_at) == (ReplyStatus.SENDING, "alpha", clock.now)


def test_timeout_is_retried(database: Database, smtp_sink: SmtpSink, clock: Clock) -> None:
    base = settings_for(smtp_sink)
    settings = dataclasses.replace(base, smtp=dataclasses.replace(base.smtp, timeout=0.3))
    [reply_id] = add_replies(database, settings.event, 1, clock.now)
    smtp_sink.slow_down(1.0)  # the server takes longer to answer DATA than we wait
    report = deliver_pending(database.sessions, settings, "w", clock)
    assert (report.sent, report.retried) == (0, 1)
    row = rows(database)[reply_id]
    assert row.status == ReplyStatus.PENDING and "Timeout" in (row.last_error or "")
    smtp_sink.slow_down(0)
    clock.advance(timedelta(hours=1))
    assert deliver_pending(database.sessions, settings, "w", clock).sent == 1


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (aiosmtplib.SMTPConnectError("Error connecting: Connect call failed"), True),
        (aiosmtplib.SMTPServerDisconnected("Server disconnected unexpectedly"), True),
        (aiosmtplib.SMTPReadTimeoutError("Timed out waiting for server response"), True),
        (aiosmtplib.SMTPDataError(451, "4.3.0 Try again later"), True),
        (aiosmtplib.SMTPDataError(554, "5.7.1 Rejected"), False),
        (aiosmtplib.SMTPAuthenticationError(535, "5.7.8 Bad credentials"), False),
        (aiosmtplib.SMTPConnectResponseError(421, "4.3.2 Too busy"), True),
        (aiosmtplib.SMTPConnectResponseError(554, "5.3.2 Go away"), False),
        (aiosmtplib.SMTPNotSupported("STARTTLS extension not supported by server"), False),
        (ssl.SSLCertVerificationError("certificate verify failed"), False),
        (ssl.SSLEOFError("EOF occurred in violation of protocol"), True),
        (ConnectionResetError(104, "Connection reset by peer"), True),
    ],
)
def test_error_classes(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient
