"""`POST /api/check` (acceptance 2): each hostile file of the judge's suite gets its own finding,
quickly, from a worker whose memory the kernel bounds; 30 MB is refused with 413; an address
that uploads 50 files in a minute is refused politely after the limit; nothing is written."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.judge import corpus as c
from tests.judge.test_hostile import HOSTILE
from tests.precheck.conftest import Page, address_space_limit, peak_mb, start_page, stop_page

MB = 2**20


@pytest.mark.parametrize("name", list(HOSTILE))
def test_each_hostile_file_gets_its_own_finding(page: Page, name: str) -> None:
    build, code = HOSTILE[name]
    data = build()
    started = time.monotonic()
    status, answer = page.check(name, data)
    took = time.monotonic() - started
    print(f"{name}: {took:.3f} s")  # measured; the bound is the worker's own CPU limit
    assert status == 200, answer
    assert answer["status"] == "rejected"
    assert code in [f["code"] for f in answer["findings"]], answer
    for finding in answer["findings"]:
        assert (
            set(finding) == {"code", "severity", "message", "fix"} and finding["message"] and finding["fix"]
        )
    assert took < 30, f"{name} took {took:.1f} s (generous limit; the worker's CPU limit is 2 s)"


def test_a_valid_document_is_ready_to_send(page: Page) -> None:
    status, answer = page.check("input.docx", c.filled_jca())
    assert status == 200
    assert answer["status"] == "accepted", answer["findings"]
    assert answer["title"] == c.TITLE and answer["source"] == c.SOURCE
    assert answer["contacts"] and answer["contacts"][0]["name"] == c.CONTACT[0]
    assert answer["address"] == "tsbjcamv@itu.int"


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
    status, _, body = page.post("/api/check", "big.docx", b"PK\x03\x04" + b"\0" * (30 * MB))
    took = time.monotonic() - started
    print(f"30 MB: {took:.3f} s")
    assert status == 413
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
