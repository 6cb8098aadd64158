"""Properties of the parse → screen → judge → record path over hostile input (hypothesis).

Whatever the bytes: no exception but the parser's `Unparseable`, no judge
fault, a valid verdict, and a recorded message whose row, bytes and reply are
sound. Examples per test: 40 in the short run, 1,000 with INTAKE_FULL=1
(INTAKE_HOSTILE_EXAMPLES overrides both).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intake.domain import MessageStatus
from intake.parse import parse_message
from tests.hostile import strategies as hs
from tests.hostile.conftest import PROFILE
from tests.hostile.path import Recorder, judge

REPO = Path(__file__).resolve().parents[2]


@PROFILE
@given(hs.generated_messages())
def test_generated_mime_gets_a_verdict(raw: bytes) -> None:
    assert isinstance(judge(raw).status, MessageStatus)


@PROFILE
@given(hs.mutated_messages())
def test_mutated_real_and_generated_mail_gets_a_verdict(raw: bytes) -> None:
    assert isinstance(judge(raw).status, MessageStatus)


@PROFILE
@given(hs.office_attachments())
def test_mutated_office_files_get_a_verdict_each(raw: bytes) -> None:
    verdict = judge(raw)
    # The message is well formed, so every mutated file is found and judged on its own.
    assert verdict.status in (MessageStatus.ACCEPTED, MessageStatus.PARTIAL, MessageStatus.REJECTED)
    files = [d for d in verdict.documents if d.filename and d.filename.startswith("f")]
    assert len(files) == raw.count(b'filename="f')


@PROFILE
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_get_a_verdict(raw: bytes) -> None:
    assert isinstance(judge(raw).status, MessageStatus)


@PROFILE
@given(hs.hostile_messages())
def test_every_message_ends_recorded(recorder: Recorder, raw: bytes) -> None:
    status = recorder.record(raw)
    assert MessageStatus(status)
    if recorder.recorded % 25 == 0:
        recorder.render_log()


def nested(depth: int, body_lines: int) -> bytes:
    head = b"From: Dee <dee@example.org>\r\nTo: tsbjcamv@itu.int\r\nSubject: deep\r\nMIME-Version: 1.0\r\n"
    nest = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i) for i in range(depth)
    )
    return head + nest + b"Content-Type: text/plain\r\n\r\n" + b"x\r\n" * body_lines


def test_deep_nesting_below_the_recursion_limit_is_refused_quickly(tmp_path: Path) -> None:
    raw = tmp_path / "deep.eml"
    raw.write_bytes(nested(900, 100_000))
    script = (
        "import sys; from intake.parse import parse_message, Unparseable\n"
        "try:\n    parse_message(open(sys.argv[1], 'rb').read())\nexcept Unparseable:\n    pass\n"
    )
    # In a subprocess with a timeout: the fault is time, and the test must not hang on it.
    try:
        subprocess.run([sys.executable, "-c", script, str(raw)], timeout=3, check=True, cwd=REPO)
    except subprocess.TimeoutExpired:
        pytest.fail("parsing one 0.4 MB message took more than 3 s")


def test_moderate_nesting_parses_in_reasonable_time() -> None:
    """The same shape at a depth real mail reaches is no problem: the cost is the depth."""
    started = time.monotonic()
    inbound = parse_message(nested(8, 20_000))
    assert inbound.subject == "deep" and time.monotonic() - started < 3
