"""The mail the fault tests feed the service: every outcome that matters for the invariant.

Accepted submissions (each takes a document number), refusals and late
submissions (each owes the sender one reply), auto-replies (ignored: no reply),
garbage (quarantined), and second copies of earlier messages (duplicates).
Every sender is distinct, so no reply is held back by a rate limit.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path

from intake.config import EventSettings, load_settings
from intake.samples import DOCX, Contributor, make_docx

REPO = Path(__file__).resolve().parents[2]
TO = "tsbjcamv@itu.int"
TITLES = (
    "Interoperability of avatars",
    "Digital identity for virtual worlds",
    "Spatial computing requirements",
    "Accessibility of immersive services",
    "Metaverse network performance",
    "Trust frameworks for virtual economies",
)
# What each kind of message becomes, and whether its sender is owed a reply.
OUTCOME = {
    "accepted": ("accepted", True),
    "question": ("correspondence", True),  # no document attached: the notice (issue 11)
    "pdf": ("rejected", True),  # a PDF without its .docx
    "late": ("late", True),
    "auto_reply": ("ignored", False),
    "garbage": ("quarantined", False),
    "duplicate": ("duplicate", False),
}


@dataclass(frozen=True)
class Mail:
    kind: str  # a key of OUTCOME
    raw: bytes
    received_at: datetime
    sender: str | None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()

    @property
    def owes_reply(self) -> bool:
        return OUTCOME[self.kind][1]


@functools.cache
def event() -> EventSettings:
    """The shipped JCA-MV event (the same deadline and fields as tests/support/intake_env.py)."""
    unused = {
        "INTAKE_IMAP_HOST": "imap.invalid",
        "INTAKE_IMAP_USER": TO,
        "INTAKE_IMAP_PASSWORD": "unused",
        "INTAKE_SMTP_HOST": "smtp.invalid",
    }
    return load_settings(REPO / "config" / "jca-mv-2.toml", env=unused).event


@functools.cache
def document(title: str) -> bytes:
    who = Contributor("Jane Doe", "jane@example.org", "Example Institute", "Switzerland")
    return make_docx(event(), title, who.organization, who, "An abstract about the metaverse.", 1)


def _kind(i: int) -> str:
    slot = i % 20
    if slot in (0, 2, 4, 6, 8, 10, 12, 14):
        return "accepted"
    if slot in (1, 9, 15):
        return "question"
    if slot == 3:
        return "pdf"
    if slot in (5, 17):
        return "late"
    if slot == 7:
        return "auto_reply"
    if slot == 11:
        return "garbage"
    return "duplicate"  # 13, 16, 18, 19 fall back to this only after an earlier message


def mail(count: int, start: int = 0) -> list[Mail]:
    """`count` messages, numbered from `start` (numbers make senders and contents unique)."""
    deadline = event().deadline
    before = deadline - timedelta(days=2)
    out: list[Mail] = []
    for i in range(start, start + count):
        kind = _kind(i)
        if kind == "duplicate":
            original = next((m for m in reversed(out) if m.kind in ("accepted", "question")), None)
            if original is not None and i % 20 in (13, 19):
                out.append(Mail("duplicate", original.raw, before + timedelta(minutes=i), original.sender))
                continue
            kind = "accepted"
        if kind == "garbage":
            raw = b"\x1b[2J garbage %d \xff\xfe not an e-mail\r\n\r\n\x01\x02\x03" % i
            out.append(Mail(kind, raw, before + timedelta(minutes=i), None))
            continue
        sender = f"contributor{i}@example{i % 7}.org"
        msg = EmailMessage(policy=SMTP)
        msg["From"] = f"Contributor {i} <{sender}>"
        msg["To"] = TO
        msg["Message-ID"] = f"<fault-{i}@example{i % 7}.org>"
        msg["Date"] = format_datetime(before + timedelta(minutes=i))
        received = before + timedelta(minutes=i)
        if kind == "auto_reply":
            msg["Subject"] = f"Automatic reply: input {i}"
            msg["Auto-Submitted"] = "auto-replied"
            msg.set_content("I am out of the office.\n")
        elif kind == "question":
            msg["Subject"] = f"Question {i} about the meeting"
            msg.set_content(f"Is remote participation possible? ({i})\n")
        else:
            msg["Subject"] = f"Input document {i}"
            msg.set_content(f"Dear secretariat,\n\nplease find input {i} attached.\n")
            if kind == "pdf":
                msg.add_attachment(
                    b"%PDF-1.4\n%%EOF\n", maintype="application", subtype="pdf", filename=f"{i}.pdf"
                )
            else:
                maintype, _, subtype = DOCX.partition("/")
                # A title of its own: the same bytes twice would be a resend (already_numbered).
                data = document(f"{TITLES[i % len(TITLES)]} ({i})")
                msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=f"input-{i}.docx")
            if kind == "late":
                received = deadline + timedelta(hours=1, minutes=i)
        out.append(Mail(kind, msg.as_bytes(), received, sender))
    return out
