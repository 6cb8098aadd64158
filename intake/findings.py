"""The findings catalogue: every finding the service can report, defined once.

A finding has a stable code, a severity (an error blocks, a warning informs,
info is only recorded), the sentence the contributor reads, and how to fix it.
The reply, the CLI, the dashboard, `docs/findings.md` and the tests all read
this table. Sentences are `str.format` templates over the finding's params.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class FindingKind:
    code: str
    severity: Severity
    sentence: str  # what is wrong, for the contributor; may use {params}
    fix: str  # how to put it right; may use {params}


@dataclass(frozen=True)
class Found:
    """One finding about a message or a document, ready to record and to show."""

    code: str
    severity: Severity
    message: str
    fix: str
    detail: str | None = None
    params: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def blocks(self) -> bool:
        return self.severity is Severity.ERROR


CATALOGUE: dict[str, FindingKind] = {}


def _kind(code: str, severity: Severity, sentence: str, fix: str) -> None:
    if code in CATALOGUE:
        raise ValueError(f"finding {code} defined twice")
    CATALOGUE[code] = FindingKind(code, severity, sentence, fix)


def found(code: str, detail: str | None = None, **params: object) -> Found:
    """Build a finding from the catalogue; an unknown code is a programming error."""
    kind = CATALOGUE[code]
    text = {k: str(v) for k, v in params.items()}
    return Found(
        code=code,
        severity=kind.severity,
        message=kind.sentence.format(**text),
        fix=kind.fix.format(**text),
        detail=detail,
        params=text,
    )


# --- the message as a whole -------------------------------------------------
_kind(
    "message.too_large",
    Severity.ERROR,
    "Your message is {size_mb} MB, larger than the {limit_mb} MB this mailbox accepts.",
    "Send the document again with smaller attachments: remove embedded videos or large "
    "images, or send a companion archive separately.",
)
_kind(
    "message.unparseable",
    Severity.ERROR,
    "Your message could not be read as an e-mail ({error}).",
    "Send it again from an ordinary mail program, with the document attached.",
)
_kind(
    "message.worker_lost",
    Severity.ERROR,
    "Your message could not be examined: reading it stopped the process examining it twice ({why}).",
    "Send it again with the document saved afresh from your word processor; if this happens again, "
    "write to the secretariat.",
)
_kind(
    "message.no_sender",
    Severity.ERROR,
    "The message has no usable sender address.",
    "Send it again from a mail account with a valid From address.",
)
_kind(
    "message.no_document",
    Severity.ERROR,
    "Your message carried no document.",
    "Attach your input document as a Word (.docx) file made with the ITU-T template.",
)
_kind(
    "message.defects",
    Severity.INFO,
    "The message's structure had defects that the reader worked around ({defects}).",
    "Nothing to do unless a document is reported missing.",
)


# --- documents ----------------------------------------------------------------
# What a file really is, and whether it can be a document (intake.judge.filetype, .policy).
_SAVE_AS_DOCX = (
    "In Word: File > Save As, set 'Save as type' to 'Word Document (*.docx)' and click Save. "
    "In LibreOffice Writer: File > Save As, set 'File type' to 'Word 2007-365 (.docx)', "
    "click Save and choose 'Use Word 2007-365!'."
)
_SAVE_AGAIN = (
    "Open the document in Word or LibreOffice Writer, save it again as a new .docx file "
    "(File > Save As), and send the saved file."
)
_kind(
    "type.empty",
    Severity.ERROR,
    "This file is empty: it contains no data.",
    "Attach the document again. If it is still empty, open it in Word, save it, and attach the saved file.",
)
_kind(
    "type.legacy_doc",
    Severity.ERROR,
    "This is an old-format Word document (.doc, Word 97-2003). We accept only the current "
    "Word format (.docx).",
    "Save it as .docx and send that file. " + _SAVE_AS_DOCX,
)
_kind(
    "type.macro_enabled",
    Severity.ERROR,
    "This Word file contains macros (it is a .docm file, or a .docx with macros inside). "
    "For everyone's safety we do not accept files with macros.",
    "Save a copy without macros and send that. In Word: File > Save As, set 'Save as type' "
    "to 'Word Document (*.docx)', click Save, and click 'Yes' when Word says the macros will "
    "be removed. In LibreOffice Writer: File > Save As with 'Word 2007-365 (.docx)'.",
)
_kind(
    "type.encrypted",
    Severity.ERROR,
    "This file is protected with a password, so it cannot be opened.",
    "Remove the password and send the file again. In Word: File > Info > Protect Document > "
    "Encrypt with Password, delete the password, click OK and save. In LibreOffice Writer: "
    "File > Save As, untick 'Save with password', and save.",
)
_kind(
    "type.pdf_without_word",
    Severity.ERROR,
    "This is a PDF, and no Word version of the document came with it. Input documents must "
    "be sent as Word (.docx) files.",
    "Send the Word (.docx) file of your document, made with the meeting's template. You may "
    "attach the PDF beside it.",
)
_kind(
    "type.zip_without_word",
    Severity.ERROR,
    "This is a zip archive, and no Word document came with it. A zip may only come with a "
    "Word document, for extra material.",
    "Attach your document itself as a Word (.docx) file, not packed in a zip. You may attach "
    "the zip beside it.",
)
_kind(
    "type.unsupported",
    Severity.ERROR,
    "This file is {kind}, which is not accepted as an input document.",
    "Send your document as a Word (.docx) file made with the meeting's template. To convert "
    "a file, open it in Word or LibreOffice Writer and save it as .docx: " + _SAVE_AS_DOCX,
)
_kind(
    "type.name_mismatch",
    Severity.WARNING,
    "The file is named “{name}”, like {claimed}, but it is really {actual}.",
    "Check that you attached the file you meant to send. To change a file's type, open it "
    "and use File > Save As; renaming it does not change what it is.",
)
_kind(
    "type.winmail_dat",
    Severity.ERROR,
    "Your mail program (Microsoft Outlook) packed the attachments into a file called "
    "winmail.dat, and we could not unpack it.",
    "Send the message again in HTML format: in Outlook, open a new message, choose Format Text "
    "> HTML, attach your document and send it. To make it the default: File > Options > Mail "
    "> 'Compose messages in this format': HTML.",
)
_kind(
    "document.fault",
    Severity.ERROR,
    "We could not examine this file because of a fault on our side, not in your file.",
    "Nothing to change in your file. The secretariat has been told and will look at it; "
    "you may also send it again later.",
)
# A resend (intake.resends): recorded on the copy, for the desk; the contributor gets the
# already-registered reply (config/replies/already_registered.*.j2) instead.
_kind(
    "document.already_registered",
    Severity.INFO,
    "This file is the same, byte for byte, as {number}, received on {day}, so it is not "
    "registered a second time.",
    "Nothing to do: the document keeps its number, {number}. To send a changed version, send "
    "the changed file and say in the subject which number it revises.",
)

# Opening a file safely (intake.judge.safety).
_kind(
    "safety.damaged",
    Severity.ERROR,
    "This file is damaged and cannot be opened.",
    "Check that the document opens in Word, save it again, and attach the saved file. If you "
    "copied it from a download or a shared drive, take a fresh copy.",
)
_kind(
    "safety.zip_bomb",
    Severity.ERROR,
    "This file would unpack to far more data than any document needs ({amount}). Files like "
    "this are made to overload computers, so we did not open it.",
    _SAVE_AGAIN + " If your document really is this large, make the pictures smaller "
    "(in Word: File > Compress Pictures) or send large material separately.",
)
_kind(
    "safety.too_many_parts",
    Severity.ERROR,
    "This file is made of {count} internal parts, more than the {limit} we accept.",
    _SAVE_AGAIN,
)
_kind(
    "safety.encrypted_part",
    Severity.ERROR,
    "Some content inside this file is locked with a password ({member}).",
    "Remove any password protection, then " + _SAVE_AGAIN[0].lower() + _SAVE_AGAIN[1:],
)
_kind(
    "safety.unsafe_path",
    Severity.ERROR,
    "This file contains a part with an unsafe name ({member}), a trick used to put files "
    "outside their folder.",
    _SAVE_AGAIN + " If you did not make this file yourself, ask your IT support to check it.",
)
_kind(
    "safety.duplicate_part",
    Severity.ERROR,
    "This file contains two parts with the same name ({member}), which Word never does.",
    _SAVE_AGAIN,
)
_kind(
    "safety.xml_entities",
    Severity.ERROR,
    "This file contains XML entity declarations (in {member}), a trick known as 'billion "
    "laughs' that makes a file swell in memory. Word never writes these.",
    _SAVE_AGAIN + " If you did not make this file yourself, ask your IT support to check it.",
)
_kind(
    "safety.xml_external",
    Severity.ERROR,
    "This file tries to read content from outside itself (in {member}), a trick used to "
    "steal data from the computer that opens it.",
    _SAVE_AGAIN + " If you did not make this file yourself, ask your IT support to check it.",
)
_kind(
    "safety.remote_template",
    Severity.ERROR,
    "This file loads its template from a remote address ({target}), a known way of hiding "
    "harmful content in Word files.",
    "Copy your text into a fresh copy of the meeting's template and send that. Or, in Word: "
    "File > Options > Add-ins, choose 'Templates' under Manage and click Go, replace the "
    "document template with 'Normal', click OK, then save and send again.",
)
_kind(
    "safety.external_content",
    Severity.ERROR,
    "This file fetches {what} from outside itself when it is opened ({target}); we do not "
    "accept documents that fetch content.",
    "Put the content into the document instead of linking to it. In Word: File > Info > "
    "'Edit Links to Files', select each link and click 'Break Link'; then save and send "
    "again.",
)
_kind(
    "safety.too_complex",
    Severity.ERROR,
    "This file is too complex to examine safely ({reason}).",
    _SAVE_AGAIN + " If the document really is this long, send it in parts and tell the secretariat.",
)

# The document's header against the meeting's template (intake.judge.template).
_kind(
    "template.no_header",
    Severity.ERROR,
    "This document does not have the header of the meeting's template (the table at the top "
    "of the first page with Source, Title, Contact and Abstract).",
    "Copy your text into the {acronym} document template, fill in the header table at the "
    "top, and send the document again. If you do not have the template, ask the secretariat "
    "at {address}.",
)
_kind(
    "template.missing_field",
    Severity.ERROR,
    "The header field “{field}” is missing or empty.",
    "Fill in “{field}” in the header table at the top of the first page.",
)
_kind(
    "template.placeholder",
    Severity.ERROR,
    "The template's sample text “{text}” is still in {where}.",
    "Replace it with your own information, or delete it if it does not apply, and remove the "
    "square brackets around it.",
)
_kind(
    "template.contact_email",
    Severity.ERROR,
    "The “{field}” field has no valid e-mail address ({found}).",
    "Write the contact person's e-mail address after “E-mail:” in the “{field}” field, in "
    "the form name@example.org.",
)
_kind(
    "template.wrong_group",
    Severity.ERROR,
    "The header is for another group: it says “{found}”, but this document is for the {group} ({acronym}).",
    "Use the {acronym} document template, or change the group in the header to “{group}”, "
    "and check the rest of the header.",
)
_kind(
    "template.wrong_meeting",
    Severity.ERROR,
    "The header gives the meeting as “{found}”, but this is the meeting in {place} on {date}.",
    "Change the place and date in the header to “{place}, {date}”.",
)
_kind(
    "template.group_missing",
    Severity.WARNING,
    "The header does not name the group ({group}, {acronym}).",
    "Add “{group}” to the header, at the top right as in the template.",
)
_kind(
    "template.study_period",
    Severity.WARNING,
    "The header says study period {found}, but this meeting belongs to study period {expected}.",
    "Change the header to “STUDY PERIOD {expected}”, or start from the current template.",
)
_kind(
    "template.too_many_words",
    Severity.WARNING,
    "The “{field}” has {words} words; it should have at most {limit}.",
    "Shorten the “{field}” to {limit} words or fewer.",
)
_kind(
    "template.tracked_changes",
    Severity.WARNING,
    "The document still contains tracked changes ({count}).",
    "Accept or reject all changes, turn Track Changes off, and save. In Word: Review > Accept "
    "> Accept All Changes, then click Review > Track Changes so it is no longer selected. In "
    "LibreOffice Writer: Edit > Track Changes > Manage, click Accept All, then untick "
    "Edit > Track Changes > Record Changes.",
)
_kind(
    "template.track_changes_on",
    Severity.WARNING,
    "Track Changes is switched on in this document, so any later edit would show as a marked change.",
    "Turn it off and save. In Word: click Review > Track Changes so it is no longer "
    "selected. In LibreOffice Writer: untick Edit > Track Changes > Record Changes.",
)
_kind(
    "template.highlight",
    Severity.WARNING,
    "Yellow highlighting is left in the document (for example on “{sample}”).",
    "Remove it: select all the text (Ctrl+A), then in Word choose Home > Text Highlight Color "
    "> No Color; in LibreOffice Writer choose Format > Character > Highlighting > None.",
)

# On time or late (intake.judge.deadline). Times are given in the event's time zone.
_kind(
    "deadline.late",
    Severity.WARNING,
    "Your message reached our mail server on {received}, after the deadline of {deadline}. "
    "It is kept for the secretariat, who decide with the convener whether a late document "
    "can be admitted.",
    "Nothing to do now: the secretariat will tell you whether your document is admitted. "
    "If you believe you sent it in time, reply with the details.",
)
_kind(
    "deadline.late_rejected",
    Severity.ERROR,
    "Your message reached our mail server on {received}, after the deadline of {deadline}. "
    "Documents that arrive late are not accepted for this meeting.",
    "If you believe you sent it in time, or the matter is urgent, write to the secretariat at {address}.",
)
_kind(
    "deadline.grace",
    Severity.INFO,
    "Your message reached our mail server on {received}, after the deadline of {deadline} "
    "but within the grace period, so it counts as on time.",
    "Nothing to do.",
)
_kind(
    "deadline.date_gap",
    Severity.WARNING,
    "Your message is dated {sent}, but our mail server received it on {received}, {gap} "
    "apart. The time our server received it is what counts.",
    "Nothing to do. If your message was held up on the way, tell the secretariat.",
)
