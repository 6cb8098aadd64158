"""Real-world mail through the real poller: Dovecot in, `intake poll --once`, the JSON log out.

Each case of tests/mail/cases.py must come out with exactly its status, its
decoded subject and sender, and the documents found with their decoded file
names, roles and statuses; its raw bytes must be stored unchanged.
"""

from __future__ import annotations

import hashlib

import pytest

from intake.store import BlobStore
from tests.mail.cases import NAMES, Document
from tests.mail.conftest import Polled

pytestmark = pytest.mark.dovecot


def documents(entry: dict[str, object]) -> tuple[Document, ...]:
    return tuple(
        Document(d["filename"], d["role"], d["status"], numbered=d["number"] is not None)
        for d in entry["documents"]  # type: ignore[attr-defined]
    )


# Product bugs found by this catalogue: the whole-case test fails for these, on purpose.
KNOWN_BUGS: dict[str, str] = {}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[n])) if n in KNOWN_BUGS else n
        for n in NAMES
    ],
)
def test_case_comes_out_exactly_as_expected(polled: Polled, name: str) -> None:
    case, entry = polled.cases[name], polled.entries[name]
    assert entry["status"] == case.status, entry
    assert entry["subject"] == case.subject
    assert entry["sender"] == case.sender
    assert entry["message_id"] == case.message_id
    assert documents(entry) == case.documents
    assert entry["received_at"] == case.received_at.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("name", NAMES)
def test_case_is_stored_byte_for_byte_and_filed(polled: Polled, name: str) -> None:
    raw = (polled.eml_dir / f"{name}.eml").read_bytes()
    entry = polled.entries[name]
    assert entry["sha256"] == hashlib.sha256(raw).hexdigest()
    assert BlobStore(polled.env.data_dir).get(entry["sha256"]) == raw
    assert entry["filed_folder"] == f"Intake/{entry['status'].capitalize()}"


def test_every_number_is_distinct_and_only_accepted_documents_have_one(polled: Polled) -> None:
    numbers = [d["number"] for e in polled.entries.values() for d in e["documents"] if d["number"]]
    assert len(numbers) == len(set(numbers))
    expected = sum(d.numbered for c in polled.cases.values() for d in c.documents)
    # The 8-bit case is numbered even while its file name is mangled (see below).
    assert len(numbers) == expected
    assert "Traceback" not in polled.stderr


def test_winmail_dat_yields_the_document_packed_inside(polled: Polled) -> None:
    entry = polled.entries["outlook_winmail"]
    inner = entry["documents"][1]
    assert inner["type"] == "docx" and inner["number"]
    assert inner["title"] == "Interoperability of avatars across platforms"


def test_missing_date_is_recorded_without_one(polled: Polled) -> None:
    assert polled.entries["missing_date"]["date_header"] is None
    assert polled.entries["missing_message_id"]["date_header"] == "2026-04-27T08:29:13Z"


def test_deep_nesting_is_quarantined_with_a_reason(polled: Polled) -> None:
    """What already holds for the 3,000-deep case (its headers are lost: KNOWN_BUGS)."""
    entry = polled.entries["deep_nesting"]
    assert entry["status"] == "quarantined"
    assert entry["documents"] == []
    assert entry["error"]  # the reason, for the secretariat
    assert entry["replies"] == []


def test_raw_8bit_headers_subject_and_sender(polled: Polled) -> None:
    """Raw UTF-8 bytes in From, Subject and the file name parameter all come out as written."""
    case, entry = polled.cases["eight_bit_headers"], polled.entries["eight_bit_headers"]
    assert entry["status"] == case.status
    assert entry["subject"] == "Beitrag für die JCA-MV: Größenordnung"
    assert entry["sender"] == case.sender and entry["sender_name"] == "Zoë Müller"
    assert [(d["filename"], d["role"], d["status"]) for d in entry["documents"]] == [
        ("Beitrag Größe.docx", "document", "accepted")
    ]
