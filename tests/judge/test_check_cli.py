"""`intake check` on local files (acceptance item 5): readable findings, and exit codes."""

from __future__ import annotations

import io
from pathlib import Path

from intake.config import EventSettings
from intake.judge.check_cli import run_check
from tests.judge import corpus as c


def check(paths: list[Path], event: EventSettings) -> tuple[int, str]:
    out = io.StringIO()
    code = run_check(paths, event, out)
    return code, out.getvalue()


def test_a_folder_of_good_documents_passes(tmp_path: Path, event: EventSettings) -> None:
    (tmp_path / "itu.docx").write_bytes(c.filled_itu())
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "jca.docx").write_bytes(c.filled_jca())
    (tmp_path / "~$jca.docx").write_bytes(b"Word's lock file")  # skipped, as Word's own
    (tmp_path / ".DS_Store").write_bytes(b"\0\0")
    code, text = check([tmp_path], event)
    assert code == 0, text
    assert f"{tmp_path / 'itu.docx'}: accepted (a Word document (.docx))" in text
    assert f"Title: {c.TITLE}" in text
    assert "~$" not in text and ".DS_Store" not in text
    assert text.rstrip().endswith("2 files checked: 2 accepted.")


def test_a_folder_with_a_refused_file_fails_and_says_why(tmp_path: Path, event: EventSettings) -> None:
    (tmp_path / "good.docx").write_bytes(c.filled_jca())
    (tmp_path / "blank.docx").write_bytes(c.JCA_TEMPLATE.read_bytes())
    (tmp_path / "paper.pdf").write_bytes(c.PDF)
    (tmp_path / "smime.p7s").write_bytes(c.P7S)
    code, text = check([tmp_path], event)
    assert code == 1
    assert f"{tmp_path / 'blank.docx'}: REFUSED (a Word document (.docx))" in text
    assert "ERROR template.placeholder: The template's sample text “Insert contact name” is" in text
    assert "WARNING template.highlight: Yellow highlighting" in text
    assert "Fix: Replace it with your own information" in text
    assert f"{tmp_path / 'paper.pdf'}: REFUSED (a PDF)" in text
    assert "ERROR type.pdf_without_word" in text
    assert f"{tmp_path / 'smime.p7s'}: not a document" in text
    assert text.rstrip().endswith("4 files checked: 1 accepted, 2 refused, 1 not a document.")
    assert max(len(line) for line in text.splitlines()) <= 100 + len(str(tmp_path))


def test_single_files_and_exit_codes(tmp_path: Path, event: EventSettings) -> None:
    good, bad = tmp_path / "good.docx", tmp_path / "old.doc"
    good.write_bytes(c.filled_jca())
    bad.write_bytes(c.legacy_doc())
    assert check([good], event)[0] == 0
    code, text = check([good, bad], event)
    assert code == 1
    assert "ERROR type.legacy_doc" in text and "Word 2007-365" in text


def test_a_missing_path_or_an_empty_folder_fails(tmp_path: Path, event: EventSettings) -> None:
    code, text = check([tmp_path / "nowhere.docx"], event)
    assert code == 1 and "no such file or folder" in text
    (tmp_path / "empty").mkdir()
    code, text = check([tmp_path / "empty"], event)
    assert code == 1 and "no files to check" in text


def test_the_files_inside_a_winmail_dat_are_checked(tmp_path: Path, event: EventSettings) -> None:
    winmail = tmp_path / "winmail.dat"
    winmail.write_bytes(c.tnef([("input.docx", c.filled_jca()), ("input.pdf", c.PDF)]))
    code, text = check([winmail], event)
    assert f"{winmail} > input.docx: accepted" in text
    assert f"{winmail} > input.pdf: REFUSED" in text  # judged alone, a PDF needs its Word file
    assert code == 1
