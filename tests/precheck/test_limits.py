"""The judging workers' own limits: a large real document is judged within them; a file that
would take the worker past its memory, or a worker that stops answering, gets an answer all
the same (`safety.too_complex`), and the next upload is judged by a fresh worker."""

from __future__ import annotations

import io
import os
import signal
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from intake.precheck.judging import Bounds, Checker, worker_pids
from tests.judge import corpus as c
from tests.judge.conftest import shipped_event


def big_real_document(megabytes: int = 24) -> bytes:
    """The filled-in JCA document with a large photograph in it (incompressible bytes)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(c.filled_jca())) as source, zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            target.writestr(item, source.read(item.filename), zipfile.ZIP_DEFLATED)
        target.writestr("word/media/photo.png", os.urandom(megabytes * 2**20), zipfile.ZIP_STORED)
    return out.getvalue()


@pytest.fixture
def checker(request: pytest.FixtureRequest) -> Iterator[Checker]:
    bounds = getattr(request, "param", Bounds(workers=1))
    made = Checker(shipped_event(), bounds)
    made.wait_ready(120)
    try:
        yield made
    finally:
        made.close()


def test_a_24_mb_document_is_judged_within_the_default_bounds(checker: Checker) -> None:
    answer = checker.check("input.docx", big_real_document())
    assert answer["status"] == "accepted", answer["findings"]
    assert answer["title"] == c.TITLE


@pytest.mark.parametrize("checker", [Bounds(workers=1, memory_mb=150)], indirect=True)
def test_a_file_past_the_memory_bound_is_answered_and_the_worker_replaced(checker: Checker) -> None:
    answer = checker.check("input.docx", big_real_document(120))
    assert answer["status"] == "rejected"
    assert [f["code"] for f in answer["findings"]] == ["safety.too_complex"]
    assert "more memory or time" in answer["findings"][0]["message"]
    again = checker.check("input.pdf", c.PDF)
    assert [f["code"] for f in again["findings"]] == ["type.pdf_without_word"]


@pytest.mark.parametrize("checker", [Bounds(workers=1, wait_seconds=3)], indirect=True)
def test_a_worker_that_stops_answering_is_killed_and_replaced(checker: Checker) -> None:
    (pid,) = worker_pids(checker)
    os.kill(pid, signal.SIGSTOP)  # a worker that hangs, whatever the reason
    # Larger than a pipe's buffer: sending it must not hang on a worker that does not read.
    answer = checker.check("input.docx", big_real_document(2))
    assert [f["code"] for f in answer["findings"]] == ["safety.too_complex"]
    assert not Path(f"/proc/{pid}").exists(), "the stopped worker was not killed and reaped"
    assert worker_pids(checker) and worker_pids(checker) != [pid]
    assert checker.check("input.docx", c.filled_jca())["status"] == "accepted"
