"""The template: the shipped one is made by code and current; what is learned from a
template; reading a header as a person would; the [event.checks] table."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from intake.config import ConfigError, EventSettings
from intake.config.checks import DEFAULT_FIELDS, FieldRule, parse_checks
from intake.judge import judge_file, validate_checks
from intake.judge.make_template import build, load_event, main
from intake.judge.meeting import meeting_dates
from intake.text import fold, label_key, split_inline_label
from tests.judge import corpus as c
from tests.judge.conftest import with_checks

CONFIG = c.ROOT / "config" / "jca-mv-2.toml"


def test_the_shipped_template_is_what_the_code_makes() -> None:
    assert c.JCA_TEMPLATE.read_bytes() == build(load_event(CONFIG)), (
        "config/jca-mv-template.docx is stale: run python -m intake.judge.make_template "
        "--config config/jca-mv-2.toml --out config/jca-mv-template.docx"
    )


def test_make_template_command_writes_the_file(tmp_path: Path) -> None:
    out = tmp_path / "template.docx"
    assert main(["--config", str(CONFIG), "--out", str(out)]) == 0
    assert out.read_bytes() == c.JCA_TEMPLATE.read_bytes()
    assert main(["--config", str(tmp_path / "missing.toml"), "--out", str(out)]) == 2


def test_the_shipped_template_has_the_itu_layout(event: EventSettings) -> None:
    import docx

    document = docx.Document(str(c.JCA_TEMPLATE))
    text = "\n".join(cell.text for row in document.tables[0].rows for cell in row.cells)
    for line in (
        "INTERNATIONAL TELECOMMUNICATION UNION",
        "STANDARDIZATION SECTOR",
        "STUDY PERIOD 2025-2028",
        "JCA-MV-I-xxx",
        "Joint Coordination Activity on Metaverse Standardization (JCA-MV)",
        "Original: English",
        "Question(s):",
        "Geneva, 13 May 2026",
        "DOCUMENT",
        "Source:",
        "Title:",
        "Purpose:",
        "Contact:",
        "Insert contact name",
        "Insert organization",
        "Insert country",
        "Tel:",
        "E-mail:",
        "Keywords:",
        "Abstract:",
    ):
        assert line in text
    yellow = [
        run.text
        for paragraph in document.paragraphs
        for run in paragraph.runs
        if run.font.highlight_color is not None
    ]
    assert "[Your text starts here." in yellow


def test_labels_are_read_as_a_person_reads_them() -> None:
    for typed in ("Source:", "SOURCE :", "source\u00a0:", "Ｓｏｕｒｃｅ：", " Source\t:"):
        assert label_key(typed) == "source", typed
    assert label_key("Question(s):") == "questions"
    assert split_inline_label("Title\uff1a A proposal") == ("Title", "A proposal")
    assert fold("E\u2011mail\u00a0 ADDRESS") == "e-mail address"


def test_meeting_dates_in_the_forms_people_write() -> None:
    seen = {
        (a.isoformat(), b.isoformat())
        for a, b, _ in meeting_dates(
            "Geneva, 13 May 2026 | 12-13 May 2026 | 30 April – 1 May 2026 | May 13, 2026 | "
            "2026-05-13 | [Place, dd-dd mmm yyyy] | STUDY PERIOD 2025-2028"
        )
    }
    assert seen == {
        ("2026-05-13", "2026-05-13"),
        ("2026-05-12", "2026-05-13"),
        ("2026-04-30", "2026-05-01"),
    }


def test_a_meeting_range_including_the_date_is_the_right_meeting(event: EventSettings) -> None:
    data = c.filled_jca(lambda d: c.replace_text(d, "Geneva, 13 May 2026", "Geneva, 12-13 May 2026"))
    assert judge_file("range.docx", data, event).findings == ()


def test_fields_follow_the_configured_rules(event: EventSettings) -> None:
    optional_title = with_checks(event, fields={"title": {"required": False}})
    validate_checks(optional_title)
    no_title = c.filled_jca(lambda d: c.set_field(d, "Title:", ""))
    assert [f.code for f in judge_file("t.docx", no_title, event).findings] == ["template.missing_field"]
    assert judge_file("t.docx", no_title, optional_title).findings == ()
    short_keywords = with_checks(event, fields={"keywords": {"required": True, "max_words": 1}})
    codes = [f.code for f in judge_file("k.docx", c.filled_jca(), short_keywords).findings]
    assert codes == ["template.too_many_words"]  # "metaverse, roadmap": two words
    no_keywords = c.filled_jca(lambda d: c.set_field(d, "Keywords:", ""))
    codes = [f.code for f in judge_file("k.docx", no_keywords, short_keywords).findings]
    assert codes == ["template.missing_field"]
    off = with_checks(event, highlight=False, tracked_changes=False)

    def mark(document: object) -> None:
        c.highlight_word(document)  # type: ignore[arg-type]
        c.add_insertion(document)  # type: ignore[arg-type]

    marked = c.filled_jca(mark)
    assert len(judge_file("m.docx", marked, event).findings) == 2
    assert judge_file("m.docx", marked, off).findings == ()


def test_defaults_are_those_the_shipped_config_spells_out(event: EventSettings) -> None:
    assert parse_checks({}) == event.checks
    assert DEFAULT_FIELDS["abstract"] == FieldRule(required=True, max_words=200)


@pytest.mark.parametrize(
    ("checks", "setting"),
    [
        ({"abstract_words": 200}, "event.checks.abstract_words"),
        ({"highlight": "yes"}, "event.checks.highlight"),
        ({"companions": ["pdf", "docx"]}, "event.checks.companions"),
        ({"study_period": "2025"}, "event.checks.study_period"),
        ({"max_part_mb": 0}, "event.checks.max_part_mb"),
        ({"placeholders": ["ok", ""]}, "event.checks.placeholders"),
        ({"fields": {"abstract": {"max_words": -1}}}, "event.checks.fields.abstract.max_words"),
        ({"fields": {"abstract": {"maximum": 3}}}, "event.checks.fields.abstract.maximum"),
        ({"fields": {"sorce": {"required": True}}}, "event.checks.fields.sorce"),
    ],
)
def test_a_bad_checks_table_names_the_setting(
    checks: dict[str, object], setting: str, event: EventSettings
) -> None:
    with pytest.raises(ConfigError) as error:
        validate_checks(replace(event, checks=parse_checks(checks)))
    assert error.value.setting == setting


def test_an_unusable_template_is_a_config_error(tmp_path: Path, event: EventSettings) -> None:
    pdf = tmp_path / "template.pdf"
    pdf.write_bytes(c.PDF)
    plain = tmp_path / "plain.docx"
    plain.write_bytes(c.plain_document())
    for template, words in (
        (tmp_path / "gone.docx", "No such file"),
        (pdf, "not a Word"),
        (plain, "no header labels"),
    ):
        with pytest.raises(ConfigError, match=words) as error:
            validate_checks(replace(event, template=template))
        assert error.value.setting == "event.template"


def test_without_a_template_the_itu_labels_are_used(event: EventSettings) -> None:
    bare = replace(event, template=None)
    validate_checks(bare)
    assert judge_file("a.docx", c.filled_itu(), bare).findings == ()
    codes = [f.code for f in judge_file("b.docx", c.ITU_TEMPLATE.read_bytes(), bare).findings]
    assert "template.placeholder" in codes and "template.wrong_group" in codes


def test_an_edited_template_is_learned_again(tmp_path: Path, event: EventSettings) -> None:
    import os

    import docx

    template = tmp_path / "template.docx"
    template.write_bytes(c.JCA_TEMPLATE.read_bytes())
    own = replace(event, template=template)
    sample = "Write three keywords here"
    data = c.filled_jca(lambda d: c.set_field(d, "Keywords:", sample))
    assert judge_file("a.docx", data, own).findings == ()  # not a sample text of this template

    document = docx.Document(str(template))
    for _, row in c.rows(document):
        if row[0].text == "Keywords:":
            c.set_cell(row[1], sample, highlight=True)
    document.save(str(template))
    os.utime(template, ns=(1, 1))  # another modification time, whatever the clock says
    texts = [f.params["text"] for f in judge_file("b.docx", data, own).findings]
    assert texts == [sample]
