"""The pre-check page in Chromium (acceptance 1): ITU-T's blank template lists every
placeholder with its fix; a valid document is ready to send, with its title; a PDF is told to
send the Word file. The page runs no script: the file field itself takes the file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from intake.config import load_settings
from intake.judge import judge_file
from tests.desk.conftest import browser  # noqa: F401  (Debian's chromium through Playwright)
from tests.judge import corpus as c
from tests.precheck.conftest import Page


def _upload(page: Page, browser: object, path: Path) -> object:  # noqa: F811
    context = browser.new_context()  # type: ignore[attr-defined]
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.goto(page.base + "/")
    assert "Deadline for input documents" in tab.inner_text("main")
    assert re.search(r"\d{2}:\d{2} CES?T", tab.inner_text(".deadline"))  # Geneva time
    assert tab.locator("a", has_text="blank JCA-MV template").get_attribute("href") == "/template"
    tab.set_input_files("#document", str(path))
    tab.click("button[type=submit]")
    tab.wait_for_selector("#answer")
    assert not errors, errors  # e.g. a CSP violation
    return tab


def test_itu_blank_template_lists_every_placeholder_with_its_fix(
    page: Page,
    browser: object,  # noqa: F811
) -> None:
    expected = judge_file(c.ITU_TEMPLATE.name, c.ITU_TEMPLATE.read_bytes(), page.env.settings().event)
    placeholders = [f for f in expected.findings if f.code == "template.placeholder"]
    assert len(placeholders) >= 10
    tab = _upload(page, browser, c.ITU_TEMPLATE)
    assert "Not ready" in tab.inner_text("#answer .verdict")  # type: ignore[attr-defined]
    shown = tab.locator("li.finding[data-code='template.placeholder']")  # type: ignore[attr-defined]
    assert shown.count() == len(placeholders)
    for n, finding in enumerate(placeholders):
        item = shown.nth(n)
        assert item.locator(".message").inner_text().endswith(finding.message)
        assert finding.fix in item.locator(".fix").inner_text()
    tab.context.close()  # type: ignore[attr-defined]


def test_a_valid_document_is_ready_to_send_with_its_title(
    page: Page,
    browser: object,  # noqa: F811
    tmp_path: Path,
) -> None:
    path = tmp_path / "My input.docx"
    path.write_bytes(c.filled_jca())
    tab = _upload(page, browser, path)
    assert tab.inner_text("#answer .verdict") == "Ready to send to tsbjcamv@itu.int"  # type: ignore[attr-defined]
    assert tab.inner_text("#answer .title") == c.TITLE  # type: ignore[attr-defined]
    assert tab.inner_text("#answer .source") == c.SOURCE  # type: ignore[attr-defined]
    assert c.CONTACT[0] in tab.inner_text("#answer .contact")  # type: ignore[attr-defined]
    tab.context.close()  # type: ignore[attr-defined]


def test_a_pdf_is_told_to_send_the_word_file(
    page: Page,
    browser: object,  # noqa: F811
    tmp_path: Path,
) -> None:
    path = tmp_path / "input.pdf"
    path.write_bytes(c.PDF)
    tab = _upload(page, browser, path)
    answer = tab.inner_text("#answer")  # type: ignore[attr-defined]
    assert "Not ready" in answer and "Send the Word (.docx) file of your document" in answer
    tab.context.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["hostile name"])
def test_the_file_name_is_shown_as_text(
    page: Page,
    browser: object,  # noqa: F811
    tmp_path: Path,
    kind: str,
) -> None:
    path = tmp_path / '"><img src=x onerror="window.__xss=1">.docx'
    path.write_bytes(c.filled_jca())
    tab = _upload(page, browser, path)
    assert tab.evaluate("window.__xss") is None  # type: ignore[attr-defined]
    assert "<img" in tab.inner_text("#answer .file")  # type: ignore[attr-defined]
    tab.context.close()  # type: ignore[attr-defined]


def test_the_blank_template_downloads(page: Page) -> None:
    import urllib.request

    with urllib.request.urlopen(page.base + "/template", timeout=30) as response:
        assert response.headers["Content-Disposition"].startswith("attachment")
        assert response.read() == load_settings(page.env.config_path, env={}).event.template.read_bytes()  # type: ignore[union-attr]
