"""The documents list (acceptance 5): CSV and XLSX that LibreOffice opens, one row per numbered
document with number, title, source, contacts, received, status and file names; and the files
written under names built from their numbers."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook

from tests.desk.conftest import Mail, cli, person
from tests.support.intake_env import IntakeEnv

FORMULA_TITLE = '=HYPERLINK("http://attacker.example/","click")'


@pytest.fixture(scope="module")
def lo_profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lo-profile")


def _convert(
    program: str, profile: Path, source: Path, target: str, out: Path, infilter: str | None = None
) -> Path:
    command = [program, "--headless", "--norestore", "--nologo", f"-env:UserInstallation={profile.as_uri()}"]
    if infilter:
        command.append(f"--infilter={infilter}")
    command += ["--convert-to", target, "--outdir", str(out), str(source)]
    subprocess.run(command, check=True, capture_output=True, timeout=180)
    [made] = [p for p in out.iterdir() if p.stem == source.stem]
    return made


def test_export_opens_in_libreoffice_with_one_row_per_document(
    env: IntakeEnv,
    mail: Mail,
    tmp_path: Path,
    soffice: str,
    lo_profile: Path,
) -> None:
    jane, wang, late = person(0, "member.org"), person(2), person(3)
    first = mail.docx(FORMULA_TITLE, jane)
    revised = mail.docx("Roadmap, revised", jane)
    second = mail.docx("Digital identity", wang)
    mail.deliver(
        (mail.message(jane, "Roadmap", [("roadmap.docx", first)]), mail.before),
        (mail.message(jane, "JCA-MV-I-001 Rev.1", [("roadmap v2.docx", revised)]), mail.before),
        (
            mail.message(
                wang, "数字身份", [("数字身份.docx", second), ("数字身份.pdf", b"%PDF-1.7\n%%EOF\n")]
            ),
            mail.before,
        ),
        (mail.message(late, "Late", [("late.docx", mail.docx("Late", late))]), mail.after),
    )
    entries = json.loads(cli(env, "log", "--format", "json").stdout)
    late_id = next(e["id"] for e in entries if e["status"] == "late")
    cli(env, "admit", str(late_id), "--reason", "the chair agreed", "--no-send", check=True)
    csv_file, xlsx_file = tmp_path / "documents.csv", tmp_path / "documents.xlsx"
    cli(env, "export", "--format", "csv", "--out", str(csv_file), check=True)
    cli(env, "export", "--format", "xlsx", "--out", str(xlsx_file), check=True)
    # A BOM first, like the dashboard's download, so that Excel reads the names as UTF-8.
    assert csv_file.read_bytes().startswith("\ufeffNumber,".encode())
    plain = tmp_path / "plain.csv"
    cli(env, "export", "--format", "csv", "--no-bom", "--out", str(plain), check=True)
    assert plain.read_bytes() == csv_file.read_bytes()[3:]
    # The times are date-times in the workbook, not text.
    ours = load_workbook(xlsx_file).active
    assert ours is not None
    assert isinstance(ours["E2"].value, datetime) and isinstance(ours["F2"].value, datetime)
    assert ours["E2"].value - ours["F2"].value in (timedelta(hours=1), timedelta(hours=2))

    # LibreOffice reads our CSV (as UTF-8, comma-separated) and writes it back as a workbook...
    from_csv = _convert(soffice, lo_profile, csv_file, "xlsx", tmp_path / "a", infilter="CSV:44,34,76,1")
    sheet = load_workbook(from_csv).active
    assert sheet is not None
    csv_rows = [[("" if c is None else str(c)) for c in row] for row in sheet.iter_rows(values_only=True)]
    # ...and our workbook, written back as CSV.
    from_xlsx = _convert(
        soffice, lo_profile, xlsx_file, "csv:Text - txt - csv (StarCalc):44,34,76,1", tmp_path / "b"
    )
    with from_xlsx.open(encoding="utf-8", newline="") as fh:
        xlsx_rows = list(csv.reader(fh))

    for rows in (csv_rows, xlsx_rows):
        header, *documents = rows
        assert header == [
            "Number",
            "Title",
            "Source",
            "Contacts",
            "Received (Europe/Zurich)",
            "Received (UTC)",
            "Status",
            "Late",
            "File names",
        ]
        assert [r[0] for r in documents] == [
            "JCA-MV-I-001",
            "JCA-MV-I-001 Rev.1",
            "JCA-MV-I-002",
            "JCA-MV-I-003",
        ]
        by_number = {r[0]: dict(zip(header, r, strict=True)) for r in documents}
        one, rev, two = by_number["JCA-MV-I-001"], by_number["JCA-MV-I-001 Rev.1"], by_number["JCA-MV-I-002"]
        # A title that looks like a formula stays text: nothing is evaluated.
        assert "HYPERLINK" in one["Title"] and "attacker.example" in one["Title"]
        assert rev["Title"] == "Roadmap, revised" and two["Title"] == "Digital identity"
        assert one["Source"] == jane.organization and two["Source"] == wang.organization
        assert jane.address in one["Contacts"] and jane.name in one["Contacts"]
        assert wang.address in two["Contacts"]
        assert re.fullmatch(r"2026-04-27 \d\d:\d\d:\d\d", one["Received (UTC)"]), one
        assert one["Received (Europe/Zurich)"][:10] == "2026-04-27"
        assert {r["Status"] for r in by_number.values()} == {"accepted"}
        # The late document the chair admitted is marked so; the others are not.
        assert by_number["JCA-MV-I-003"]["Late"] == "admitted late"
        assert {one["Late"], rev["Late"], two["Late"]} == {""}
        assert one["File names"] == "roadmap.docx" and rev["File names"] == "roadmap v2.docx"
        assert two["File names"] == "数字身份.docx; 数字身份.pdf"

    # The files, named from their numbers alone.
    out = tmp_path / "files"
    written = cli(env, "documents", "--all", "--out", str(out), check=True).stdout.split()
    names = sorted(Path(w).name for w in written)
    assert names == [
        "JCA-MV-I-001-Rev1.docx",
        "JCA-MV-I-001.docx",
        "JCA-MV-I-002-companion.pdf",
        "JCA-MV-I-002.docx",
        "JCA-MV-I-003.docx",
    ]
    digest = hashlib.sha256((out / "JCA-MV-I-002.docx").read_bytes()).hexdigest()
    assert digest == hashlib.sha256(second).hexdigest()
    one_only = cli(env, "documents", "jca-mv-i-1", "--out", str(tmp_path / "one"), check=True).stdout.split()
    assert [Path(p).name for p in one_only] == ["JCA-MV-I-001.docx"]
    assert cli(env, "documents", "JCA-MV-I-009", "--out", str(tmp_path / "none")).returncode == 1
