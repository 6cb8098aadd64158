"""Search and filters (issue 13, "Seeing and finding") through the real `intake log`, on SQLite and
PostgreSQL: non-ASCII text whatever its case, sender addresses, document numbers typed loosely; a
filter that matches nothing says so; a date that cannot be read is refused (exit 2)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook

from intake.samples import Contributor
from tests.desk.conftest import Mail, cli, person
from tests.support.intake_env import IntakeEnv

pytestmark = pytest.mark.dovecot

LUKASZ = Contributor("Łukasz Żółkiewski", "l.zolkiewski@example.pl", "Politechnika Warszawska", "Poland")
OLGA = Contributor("Ольга Иванова", "olga@example.ru", "Институт", "Russia")


def _subjects(env: IntakeEnv, *args: str) -> list[str]:
    ran = cli(env, "log", "--format", "json", *args, check=True)
    return sorted(e["subject"] for e in json.loads(ran.stdout))


def test_search_folds_every_case_matches_addresses_and_loose_numbers(env: IntakeEnv, mail: Mail) -> None:
    jane = person(0, "member.org")
    mail.deliver(
        (mail.message(jane, "Roadmap", [("roadmap.docx", mail.docx("Roadmap", jane))]), mail.before),
        (
            mail.message(OLGA, "Вклад в метавселенную", [("vklad.docx", mail.docx("Вклад", OLGA))]),
            mail.before,
        ),
        (mail.message(LUKASZ, "Digital twins", [("twins.docx", mail.docx("Twins", LUKASZ))]), mail.before),
        (mail.message(person(3), "ÉTUDE des avatars", []), mail.before),
    )
    ran = json.loads(cli(env, "log", "--format", "json", check=True).stdout)
    numbers = {e["subject"]: [d["number"] for d in e["documents"] if d["number"]] for e in ran}
    assert numbers["Вклад в метавселенную"] == ["JCA-MV-I-002"], numbers

    # Non-ASCII text, whatever its case (SQLite's own lower() folds only ASCII).
    for word in ("Вклад", "вклад", "ВКЛАД", "ВкЛаД"):
        assert _subjects(env, "--search", word) == ["Вклад в метавселенную"], word
    assert _subjects(env, "--search", "étude") == ["ÉTUDE des avatars"]
    for name in ("łukasz", "ŁUKASZ", "żółkiewski"):
        assert _subjects(env, "--sender", name) == ["Digital twins"], name
        assert _subjects(env, "--search", name) == ["Digital twins"], name
    # Sender addresses, in the search box as the secretariat's guide says.
    assert _subjects(env, "--search", "L.Zolkiewski@Example.PL") == ["Digital twins"]
    assert _subjects(env, "--search", "member.org") == ["Roadmap"]
    # Numbers as people type them, and as stored.
    for typed in ("jca-mv-i-2", "JCA-MV-I-002", "jca_mv_i_2", "i-002"):
        assert _subjects(env, "--search", typed) == ["Вклад в метавселенную"], typed
    # LIKE's own characters are literal text.
    assert _subjects(env, "--search", "%") == []
    assert _subjects(env, "--search", "_") == []

    # A filter that matches nothing says so; an empty log says something else.
    table = cli(env, "log", "--search", "nothing-like-this", check=True).stdout
    assert table.strip() == "No message matches these filters."
    assert "No messages recorded yet" not in cli(env, "log", check=True).stdout
    everyone = cli(env, "log", "--status", "late", check=True).stdout
    assert everyone.strip() == "No message matches these filters."


def test_the_log_exports_as_filtered_with_dates_as_dates(env: IntakeEnv, mail: Mail, tmp_path: Path) -> None:
    mail.deliver(
        (mail.message(OLGA, "Вклад", [("vklad.docx", mail.docx("Вклад", OLGA))]), mail.before),
        (mail.message(LUKASZ, "No file at all", []), mail.before),
        (mail.message(person(1), "Too late", [("late.docx", mail.docx("Late", person(1)))]), mail.after),
    )
    everything, some = tmp_path / "log.xlsx", tmp_path / "some.xlsx"
    cli(env, "log", "--format", "xlsx", "--out", str(everything), check=True)
    cli(env, "log", "--format", "xlsx", "--out", str(some), "--search", "ВКЛАД", check=True)
    sheet = load_workbook(everything).active
    assert sheet is not None
    header, *rows = list(sheet.iter_rows(values_only=True))
    assert header[:4] == ("id", "received (Europe/Zurich)", "received (UTC)", "status")
    by_subject = {r[6]: dict(zip(header, r, strict=True)) for r in rows}
    # Every message, not only the numbered ones; the unnumbered rejection too.
    assert sorted(by_subject) == ["No file at all", "Too late", "Вклад"]
    assert by_subject["No file at all"]["status"] == "correspondence"
    assert by_subject["Вклад"]["numbers"] == "JCA-MV-I-001"
    assert by_subject["Too late"]["late"] == "late" and by_subject["Вклад"]["late"] is None
    received = by_subject["Вклад"]["received (Europe/Zurich)"]
    assert isinstance(received, datetime), received
    assert received - by_subject["Вклад"]["received (UTC)"] in (timedelta(hours=1), timedelta(hours=2))
    filtered = load_workbook(some).active
    assert filtered is not None
    assert [r[6] for r in filtered.iter_rows(min_row=2, values_only=True)] == ["Вклад"]
    # The CSV for Excel starts with a BOM on request; for scripts, without.
    with_bom = cli(env, "log", "--format", "csv", "--bom", check=True).stdout
    assert with_bom.startswith("\ufeffid,") and "Łukasz" in with_bom
    assert cli(env, "log", "--format", "csv", check=True).stdout.startswith("id,")
    assert cli(env, "log", "--format", "xlsx").returncode == 1  # not to a terminal: --out


def test_an_unreadable_date_is_refused_with_exit_2(env: IntakeEnv, mail: Mail) -> None:
    for option, value in (("--since", "yesterday"), ("--until", "2026-13-45"), ("--since", "30/04/2026")):
        ran = env.run("log", option, value)  # a process: argparse exits
        assert ran.returncode == 2, (option, value, ran.stderr)
        assert "not a date or date-time" in ran.stderr and repr(value) in ran.stderr, ran.stderr
        assert "Traceback" not in ran.stderr
    assert cli(env, "log", "--since", "2026-04-30", "--until", "2026-04-30T18:00").returncode == 0


def test_an_empty_log_says_it_is_empty(env: IntakeEnv) -> None:
    assert cli(env, "log", check=True).stdout.strip() == "No messages recorded yet."
