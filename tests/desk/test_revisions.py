"""Revisions (acceptance 6): linked to their original as Rev.n, or held when ambiguous."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from intake.models import Document, InboundMessage
from intake.revisions import Claim, Original, decide, find_claims, normalise_number, related
from tests.desk.conftest import Mail, body, cli, person, received
from tests.judge.conftest import shipped_event
from tests.support.intake_env import IntakeEnv
from tests.support.smtp import SmtpSink

EVENT = shipped_event()


@pytest.mark.parametrize(
    ("text", "base", "stated"),
    [
        ("JCA-MV-I-012 Rev.1: roadmap", "JCA-MV-I-012", 1),
        ("Revision of JCA-MV-I-012", "JCA-MV-I-012", None),
        ("jca-mv-i-12 rev 2", "JCA-MV-I-012", 2),
        ("Rev.3 of JCA-MV-I-004", "JCA-MV-I-004", 3),
        ("revised version of JCA-MV-I-004", "JCA-MV-I-004", None),
        ("JCA-MV-I-012R1.docx", "JCA-MV-I-012", 1),
        ("JCA-MV-I-012_Rev2.docx", "JCA-MV-I-012", 2),
    ],
)
def test_a_claim_is_found_where_people_write_it(text: str, base: str, stated: int | None) -> None:
    [claim] = find_claims(EVENT, text, [])
    assert (claim.base, claim.stated) == (base, stated)


@pytest.mark.parametrize(
    "text", ["Re: Roadmap input [JCA-MV-I-001]", "JCA-MV-I-001 review", "XJCA-MV-I-001R1", "JCA-MV-I-001"]
)
def test_a_mere_mention_of_a_number_is_not_a_claim(text: str) -> None:
    assert find_claims(EVENT, text, []) == []


def test_numbers_are_read_as_people_type_them() -> None:
    assert normalise_number(EVENT, " jca-mv-i-7 ") == "JCA-MV-I-007"
    assert normalise_number(EVENT, "JCA-MV-I-007 rev 2") == "JCA-MV-I-007 Rev.2"
    assert normalise_number(EVENT, "something else") == "something else"


ORIGINAL = Original(1, "JCA-MV-I-001", "accepted", "jane@itu-member.org", ("kim@lab.example",), 0)


def test_same_organisation_means_same_address_contact_or_private_domain() -> None:
    assert related("jane@itu-member.org", ORIGINAL)
    assert related("bob@ITU-member.org", ORIGINAL)
    assert related("kim@lab.example", ORIGINAL)
    assert related("ann@lab.example", ORIGINAL)
    assert not related("mallory@elsewhere.org", ORIGINAL)
    public = Original(1, "JCA-MV-I-001", "accepted", "jane@gmail.com", (), 0)
    assert related("jane@gmail.com", public) and not related("john@gmail.com", public)


def test_ambiguity_holds_and_says_why() -> None:
    claim = Claim("JCA-MV-I-001", 1, "subject", None)
    assert decide([claim], "jane@itu-member.org", [0], {"JCA-MV-I-001": ORIGINAL}).links[0].number == (
        "JCA-MV-I-001 Rev.1"
    )
    cases = {
        "no document has that number": decide([claim], "jane@itu-member.org", [0], {"JCA-MV-I-001": None}),
        "neither the same person": decide([claim], "x@other.org", [0], {"JCA-MV-I-001": ORIGINAL}),
        "carries 2 documents": decide([claim], "jane@itu-member.org", [0, 1], {"JCA-MV-I-001": ORIGINAL}),
        "next revision of JCA-MV-I-001 is Rev.1": decide(
            [Claim("JCA-MV-I-001", 3, "subject", None)],
            "jane@itu-member.org",
            [0],
            {"JCA-MV-I-001": ORIGINAL},
        ),
        "several numbers": decide(
            [claim, Claim("JCA-MV-I-002", None, "title", 0)], "jane@itu-member.org", [0], {}
        ),
    }
    for words, decision in cases.items():
        assert decision.links == {} and decision.hold is not None and words in decision.hold, (
            words,
            decision,
        )


def test_revisions_arrive_linked_or_held(
    env: IntakeEnv, mail: Mail, sessions: sessionmaker[Session], smtp_sink: SmtpSink
) -> None:
    jane = person(1, domain="itu-member.org")
    colleague = person(2, domain="itu-member.org")
    stranger = person(3, domain="elsewhere.org")
    first = mail.message(jane, "Roadmap input", [("roadmap.docx", mail.docx("Roadmap", jane))])
    revision = mail.message(
        colleague,
        "JCA-MV-I-001 Rev.1: roadmap input",
        [("roadmap-v2.docx", mail.docx("Roadmap v2", colleague))],
    )
    unknown = mail.message(jane, "Revision of JCA-MV-I-099", [("x.docx", mail.docx("Unknown", jane))])
    unrelated = mail.message(
        stranger, "Roadmap", [("JCA-MV-I-001R2.docx", mail.docx("Roadmap again", stranger))]
    )
    fresh = mail.message(jane, "Another input", [("other.docx", mail.docx("Other", jane))])
    mail.deliver(*[(raw, mail.before) for raw in (first, revision, unknown, unrelated, fresh)])

    with sessions() as session:
        rows = {m.subject: m for m in session.scalars(select(InboundMessage))}
        original = rows["Roadmap input"].documents[0]
        linked = rows["JCA-MV-I-001 Rev.1: roadmap input"].documents[0]
        assert original.number == "JCA-MV-I-001"
        assert (linked.number, linked.revision, linked.revision_of_id) == (
            "JCA-MV-I-001 Rev.1",
            1,
            original.id,
        )
        # A revision does not use up a number of the series.
        assert rows["Another input"].documents[0].number == "JCA-MV-I-002"
        held_unknown, held_unrelated = rows["Revision of JCA-MV-I-099"], rows["Roadmap"]
        assert held_unknown.status == "held" and "JCA-MV-I-099" in (held_unknown.reason or "")
        assert held_unrelated.status == "held" and "neither the same person" in (held_unrelated.reason or "")
        assert [d.status for d in held_unrelated.documents] == ["pending"]
        assert not held_unknown.replies and not held_unrelated.replies
        unrelated_id = held_unrelated.id

    # The acknowledgement of the revision says so: it names Rev.1 of the original number.
    acknowledgements = {str(m["To"].addresses[0].addr_spec): m for m in received(smtp_sink)}
    assert set(acknowledgements) == {jane.address, colleague.address}
    to_colleague = acknowledgements[colleague.address]
    assert "JCA-MV-I-001 Rev.1" in str(to_colleague["Subject"])
    assert "JCA-MV-I-001 Rev.1" in body(to_colleague)

    # The secretariat decides the ambiguous one: the next revision of JCA-MV-I-001.
    result = cli(env, "release", str(unrelated_id), "--revision-of", "jca-mv-i-1", "--as", "anna", check=True)
    assert "JCA-MV-I-001 Rev.2" in result.stdout
    shown = cli(env, "show", "JCA-MV-I-001", "--format", "json", check=True)
    family = json.loads(shown.stdout)["documents"][0]["family"]
    assert [f["number"] for f in family] == ["JCA-MV-I-001", "JCA-MV-I-001 Rev.1", "JCA-MV-I-001 Rev.2"]
    with sessions() as session:
        numbers = sorted(n for n in session.scalars(select(Document.number)) if n)
    assert numbers == ["JCA-MV-I-001", "JCA-MV-I-001 Rev.1", "JCA-MV-I-001 Rev.2", "JCA-MV-I-002"]
