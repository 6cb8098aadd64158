"""`POST /api/check` (acceptance 2): each hostile file of the judge's suite gets its own finding,
quickly, from a worker whose memory the kernel bounds; 30 MB is refused with 413; an address
that uploads 50 files in a minute is refused politely after the limit; nothing is written."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from tests.judge import corpus as c
from tests.judge.test_hostile import HOSTILE
from tests.precheck.conftest import (
    Page,
    address_space_limit,
    cpu_seconds,
    peak_mb,
    start_page,
    stop_page,
)
from tests.precheck.test_limits import big_real_document

T = TypeVar("T")
MB = 2**20
CPU_BOUND = 2.0  # seconds of CPU an answer may cost the page's processes (issue 14: "under 2 s")


def cpu_spent(page: Page, action: Callable[[], T]) -> tuple[T, float]:
    """`action`'s result, and the CPU time the server and its workers spent meanwhile. CPU time,
    not the wall clock: a shared, loaded machine stretches the one, not the other."""
    before = {pid: cpu_seconds(pid) for pid in page.pids()}
    result = action()
    after = {pid: cpu_seconds(pid) for pid in page.pids()}
    return result, sum(after[pid] - before[pid] for pid in before.keys() & after.keys())


@pytest.mark.parametrize("name", list(HOSTILE))
def test_each_hostile_file_gets_its_own_finding(page: Page, name: str) -> None:
    build, code = HOSTILE[name]
    data = build()
    started = time.monotonic()
    (status, answer), cpu = cpu_spent(page, lambda: page.check(name, data))
    took = time.monotonic() - started
    print(f"{name}: {took:.3f} s, {cpu:.2f} s of CPU")
    assert status == 200, answer
    assert answer["status"] == "rejected"
    assert code in [f["code"] for f in answer["findings"]], answer
    for finding in answer["findings"]:
        assert (
            set(finding) == {"code", "severity", "message", "fix"} and finding["message"] and finding["fix"]
        )
    assert cpu < CPU_BOUND, f"{name} cost {cpu:.2f} s of CPU"
    assert took < 30, f"{name} took {took:.1f} s (generous limit for a loaded machine; CPU is bounded above)"


def test_a_valid_document_is_ready_to_send(page: Page) -> None:
    status, answer = page.check("input.docx", c.filled_jca())
    assert status == 200
    assert answer["status"] == "accepted", answer["findings"]
    assert answer["title"] == c.TITLE and answer["source"] == c.SOURCE
    assert answer["contacts"] and answer["contacts"][0]["name"] == c.CONTACT[0]
    assert answer["address"] == "tsbjcamv@itu.int"


@pytest.mark.parametrize("megabytes", [1, 24])
def test_a_valid_document_of_a_real_size_is_ready_to_send(page: Page, megabytes: int) -> None:
    """A document with pictures weighs megabytes; up to the event's 25 MB it is judged, not
    refused as too large (werkzeug's form memory bound once refused nearly every upload over 128 KB)."""
    status, answer = page.check("input.docx", big_real_document(megabytes))
    assert status == 200, answer
    assert answer["status"] == "accepted" and answer["title"] == c.TITLE, answer


def test_a_pdf_is_told_to_send_the_word_file(page: Page) -> None:
    status, answer = page.check("input.pdf", c.PDF)
    assert status == 200 and answer["status"] == "rejected"
    assert [f["code"] for f in answer["findings"]] == ["type.pdf_without_word"]
    assert "Send the Word (.docx) file" in answer["findings"][0]["fix"]


def test_a_file_that_is_no_document_is_told_what_is_accepted(page: Page) -> None:
    status, answer = page.check("notes.txt", b"just some notes\n")
    assert status == 200 and answer["status"] == "rejected"
    assert "Word (.docx)" in " ".join(f["fix"] for f in answer["findings"])


def test_no_file_is_a_clear_400(page: Page) -> None:
    status, _, body = page.post("/api/check", "x.docx", b"data", field="something-else")
    assert status == 400 and "Choose your Word (.docx) document" in json.loads(body)["error"]


def test_a_30_mb_upload_is_refused_with_413(page: Page) -> None:
    started = time.monotonic()
    big = b"PK\x03\x04" + b"\0" * (30 * MB)
    (status, _, body), cpu = cpu_spent(page, lambda: page.post("/api/check", "big.docx", big))
    took = time.monotonic() - started
    print(f"30 MB: {took:.3f} s, {cpu:.2f} s of CPU")
    assert status == 413 and cpu < CPU_BOUND
    assert "larger than 25 MB" in json.loads(body)["error"]
    assert took < 30


def test_memory_stays_bounded(page: Page) -> None:
    """After the hostile files and the 30 MB upload: the server's peak, and the workers' bound."""
    pids = page.pids()
    server, workers = pids[0], pids[1:]
    assert workers, "the judging workers are not running"
    print(f"peaks: server {peak_mb(server):.0f} MB, workers {[round(peak_mb(p)) for p in workers]} MB")
    assert peak_mb(server) < 200
    for pid in workers:
        # The kernel holds each worker's whole address space under 200 MB, so its memory is too.
        assert address_space_limit(pid) == 200 * MB
        assert peak_mb(pid) < 200


def test_the_pages_carry_the_desks_security_headers(page: Page) -> None:
    status, headers, _ = page.post("/api/check", "input.pdf", c.PDF)
    assert status == 200
    assert headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "script-src" not in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"
    assert headers["Cache-Control"] == "no-store"


def test_nothing_is_written_anywhere(page: Page) -> None:
    page.check("input.docx", c.filled_jca())
    assert not page.env.data_dir.exists(), list(page.env.data_dir.rglob("*"))
    assert not Path(page.env.database_url.removeprefix("sqlite:///")).exists()
    assert list(page.tmpdir.iterdir()) == []  # uploads are buffered in unnamed temporary files only
    here = sorted(p.name for p in page.env.config_path.parent.iterdir())
    assert here == ["intake.toml", "precheck.log", "tmp"], here


def test_fifty_uploads_in_a_minute_are_refused_after_the_limit(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    limited = start_page(tmp_path_factory.mktemp("limited"), "--per-minute", "20", "--workers", "1")
    try:
        answers = [limited.post("/api/check", "input.pdf", c.PDF) for _ in range(50)]
    finally:
        stop_page(limited)
    statuses = [status for status, _, _ in answers]
    assert statuses == [200] * 20 + [429] * 30, statuses
    _, headers, body = answers[-1]
    assert int(headers["Retry-After"]) > 0
    assert "Please try again in" in json.loads(body)["error"]
