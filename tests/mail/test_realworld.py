"""The world's mail through the real poller (issue 11, acceptance 3).

Several hundred messages from the public test suites of established mail
software (fetched at test time: tests/mail/realworld.py, origins in
tests/mail/README.md) and the hand-made cases the corpus lacks
(tests/mail/worldmail.py) are appended to a private Dovecot and read by one
`intake poll --once`, on SQLite and on PostgreSQL. Then:
- every message is recorded exactly once, and no traceback is written;
- nothing the suites label a bounce, nor any automatic or bounce case, is answered;
- no subject, sender name or file name holds U+FFFD or a C1 control;
- a message is quarantined only when it holds no sender address at all;
- each hand-made case comes out with exactly its status, subject, name and files.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from intake import db
from tests.mail.realworld import CorpusMessage, FetchError, corpus
from tests.mail.worldmail import WorldCase, all_world_cases
from tests.support.databases import create_pg_database, drop_pg_database
from tests.support.dovecot import Dovecot
from tests.support.fixtures import _require_dovecot
from tests.support.intake_env import IntakeEnv, write_config

pytestmark = pytest.mark.dovecot

RECEIVED = datetime(2026, 4, 27, 8, 30, tzinfo=UTC)  # before the shipped event's deadline
UNREADABLE = re.compile("[\ufffd\u0080-\u009f]")


@dataclass(frozen=True)
class Run:
    env: IntakeEnv
    corpus: list[CorpusMessage]
    cases: list[WorldCase]
    entries: list[dict[str, Any]]  # the log, one entry per row
    corpus_uids: list[int]
    case_uids: list[int]
    stderr: str

    def entry(self, uid: int) -> dict[str, Any]:
        (found,) = [e for e in self.entries if e["uid"] == uid]
        return found


def _corpus() -> list[CorpusMessage]:
    try:
        return corpus()
    except FetchError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"the real-world corpus could not be fetched: {exc}")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    _require_dovecot()
    messages = _corpus()
    cases = all_world_cases()
    tmp = tmp_path_factory.mktemp(f"realworld-{request.param}")
    url = f"sqlite:///{tmp / 'intake.db'}" if request.param == "sqlite" else create_pg_database()
    server = Dovecot(Dovecot.make_workdir())
    try:
        db.upgrade(url)
        server.start()
        when = [RECEIVED + timedelta(seconds=i) for i in range(len(messages) + len(cases))]
        corpus_uids = server.append_many("INBOX", [(m.raw, t) for m, t in zip(messages, when, strict=False)])
        case_uids = server.append_many(
            "INBOX", [(c.raw, t) for c, t in zip(cases, when[len(messages) :], strict=True)]
        )
        env = write_config(tmp, server.host, server.port, server.user, server.password, url)
        result = env.run("poll", "--once", timeout=900, check=True)
        yield Run(env, messages, cases, env.log_json(), corpus_uids, case_uids, result.stderr)
    finally:
        server.kill()
        shutil.rmtree(server.workdir, ignore_errors=True)
        if request.param == "postgresql":
            drop_pg_database(url)


def test_the_corpus_is_several_hundred_real_messages(run: Run) -> None:
    assert len(run.corpus) >= 300, f"only {len(run.corpus)} messages were fetched"
    assert len({m.source for m in run.corpus}) >= 6


def test_every_message_is_recorded_exactly_once_without_a_traceback(run: Run) -> None:
    uids = [e["uid"] for e in run.entries]
    appended = run.corpus_uids + run.case_uids
    assert sorted(uids) == sorted(appended), "each appended UID must have exactly one row"
    assert "Traceback" not in run.stderr
    assert all(e["filed_folder"] for e in run.entries), "every message is filed after recording"


def test_nothing_the_suites_call_a_bounce_is_answered(run: Run) -> None:
    labelled = [(m, uid) for m, uid in zip(run.corpus, run.corpus_uids, strict=True) if m.label]
    assert len(labelled) >= 100
    answered = [m.name for m, uid in labelled if run.entry(uid)["replies"]]
    assert answered == []
    statuses = {run.entry(uid)["status"] for _, uid in labelled}
    assert statuses <= {"ignored", "duplicate"}, statuses


def _unreadable(entry: dict[str, Any]) -> list[str]:
    texts = [entry["subject"], entry["sender_name"], *(d["filename"] for d in entry["documents"])]
    return [t for t in texts if t and UNREADABLE.search(t)]


def test_no_replacement_character_or_c1_control_in_what_a_person_reads(run: Run) -> None:
    found = {
        m.name: _unreadable(run.entry(uid))
        for m, uid in zip(run.corpus, run.corpus_uids, strict=True)
        if _unreadable(run.entry(uid))
    }
    assert found == {}


_ADDRESS = re.compile(
    rb"^(from|sender|reply-to|return-path)[ \t]*:[^\n]*@[^\n]*\.", re.IGNORECASE | re.MULTILINE
)


def test_only_messages_without_any_sender_address_are_quarantined(run: Run) -> None:
    wrongly = []
    for message, uid in zip(run.corpus, run.corpus_uids, strict=True):
        entry = run.entry(uid)
        head = re.split(rb"\r?\n\r?\n", message.raw, maxsplit=1)[0]
        if entry["status"] == "quarantined" and _ADDRESS.search(head):
            wrongly.append((message.name, entry["reason"]))
    assert wrongly == []


@pytest.mark.parametrize("name", [c.name for c in all_world_cases()])
def test_hand_made_case_comes_out_as_its_sender_wrote_it(run: Run, name: str) -> None:
    (case, uid), *_ = [(c, u) for c, u in zip(run.cases, run.case_uids, strict=True) if c.name == name]
    entry = run.entry(uid)
    assert entry["status"] == case.status, entry["reason"]
    assert entry["subject"] == case.subject
    assert entry["sender_name"] == case.sender_name
    assert tuple(d["filename"] for d in entry["documents"]) == case.filenames
    assert bool(entry["replies"]) == case.replied, entry["replies"]
    assert not _unreadable(entry)
