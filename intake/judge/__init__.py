"""Judging documents: bytes, the event's config and the receipt time in; findings out.

`judge_message` judges every file part of a message (attachments, named inline
parts, parts of forwarded messages, the files inside a winmail.dat) and derives
the message's status from its documents; `judge_file` judges one local file the
same way; `validate_checks` checks the event's `[event.checks]` table and its
template when the config is loaded. No database, network or clock is touched;
the template file is read when it changes and its lesson kept.

The stages, one module each: `filetype` (what the bytes are), `safety` (opening
them without harm), `wordml` (reading a .docx), `template` (the header against
the event's template), `policy` (document, companion or neither), `deadline`.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from intake.config import ConfigError, EventSettings
from intake.config.checks import Checks, Limits
from intake.findings import found
from intake.judge import filetype, policy, tnef
from intake.judge.deadline import judge_time
from intake.judge.safety import Refusal
from intake.judge.template import BUILTIN, TemplateModel, check, learn
from intake.judge.wordml import read_word
from intake.parse import Inbound
from intake.verdict import DocumentVerdict, MessageVerdict

__all__ = ["judge_file", "judge_message", "validate_checks"]

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=8)
def _learned(path: str, mtime_ns: int, size: int, keep: tuple[str, ...], limits: Limits) -> TemplateModel:
    """The template's lesson; keyed by the file's identity so an edited template is reread."""
    data = Path(path).read_bytes()
    kind = filetype.detect(data, path, None, limits)
    if kind.refusal is not None:
        raise ValueError(f"{kind.refusal.message} ({kind.refusal.detail})")
    if kind.kind != "docx" or kind.archive is None or kind.main_part is None:
        raise ValueError(f"it is {kind.what}, not a Word .docx file")
    try:
        content = read_word(kind.archive, kind.main_part)
    except Refusal as refusal:
        raise ValueError(f"{refusal.finding.message} ({refusal.finding.detail})") from None
    return learn(content, Checks(keep=keep, limits=limits))


def _model(event: EventSettings, checks: Checks) -> TemplateModel:
    if event.template is None:
        return BUILTIN
    try:
        stat = event.template.stat()
        return _learned(str(event.template), stat.st_mtime_ns, stat.st_size, checks.keep, checks.limits)
    except (OSError, ValueError) as exc:
        raise ConfigError("event.template", f"{event.template}: cannot be used: {exc}") from None


def validate_checks(event: EventSettings) -> None:
    """Raise ConfigError for a bad [event.checks] table or an unusable template."""
    checks = event.checks
    model = _model(event, checks)
    labels = ", ".join(spec.label for spec in model.fields)
    for name in checks.fields:
        if model.spec(name) is None:
            raise ConfigError(
                f"event.checks.fields.{name}",
                f"the template has no such header field; its fields are: {labels}",
            )


@dataclass(frozen=True)
class _File:
    """One file to judge, and where it came from."""

    index: int  # the message part it came from
    filename: str | None
    data: bytes
    declared: str | None = None  # the Content-Type the sender's mail program gave
    disposition: str | None = "attachment"
    content_id: str | None = None
    from_container: bool = False  # unpacked from a winmail.dat


@dataclass(frozen=True)
class _Context:
    event: EventSettings
    checks: Checks
    model: TemplateModel


def _context(event: EventSettings) -> _Context:
    checks = event.checks
    return _Context(event, checks, _model(event, checks))


def _examine(file: _File, ctx: _Context) -> policy.Examined:
    """Examine one file; a fault of ours becomes a finding rather than stopping the poll."""
    try:
        return _examine_unguarded(file, ctx)
    except Exception as exc:
        log.exception("judging %r failed", file.filename)
        return policy.Examined(
            part_index=file.index,
            filename=file.filename,
            declared_type=file.declared,
            disposition=file.disposition,
            content_id=file.content_id,
            data=file.data,
            from_container=file.from_container,
            filetype=filetype.FileType("damaged", "a file we could not examine", "unknown"),
            findings=[found("document.fault", detail=f"{type(exc).__name__}: {exc}")],
        )


def _examine_unguarded(file: _File, ctx: _Context) -> policy.Examined:
    kind = filetype.detect(file.data, file.filename, file.declared, ctx.checks.limits)
    item = policy.Examined(
        part_index=file.index,
        filename=file.filename,
        declared_type=file.declared,
        disposition=file.disposition,
        content_id=file.content_id,
        data=file.data,
        from_container=file.from_container,
        filetype=kind,
    )
    if kind.refusal is not None:
        item.findings.append(kind.refusal)
    mismatch = filetype.name_mismatch(file.filename, kind)
    if mismatch is not None:
        item.findings.append(mismatch)
    if kind.kind == "docx" and kind.refusal is None and kind.archive and kind.main_part:
        try:
            content = read_word(kind.archive, kind.main_part)
        except Refusal as refusal:
            item.findings.append(refusal.finding)
        else:
            item.header = check(content, ctx.model, ctx.checks, ctx.event)
            item.findings.extend(item.header.findings)
    return item


def judge_file(filename: str | None, data: bytes, event: EventSettings) -> DocumentVerdict:
    """Judge one file as if it were the only attachment of a message."""
    ctx = _context(event)
    return policy.decide([_examine(_File(0, filename, data), ctx)], ctx.checks)[0]


def judge_message(inbound: Inbound, event: EventSettings, received_at: datetime) -> MessageVerdict:
    """Judge every file of the message; its status follows from its documents and timing."""
    ctx = _context(event)
    items: list[policy.Examined] = []
    for part in inbound.parts:
        item = _examine(
            _File(
                part.index, part.filename, part.payload, part.content_type, part.disposition, part.content_id
            ),
            ctx,
        )
        items.append(item)
        if item.filetype.kind == "tnef":
            unpacked = tnef.unpack(part.payload)
            if unpacked.problem:
                item.findings.append(found("type.winmail_dat", detail=unpacked.problem))
            for name, payload in unpacked.files:
                items.append(_examine(_File(part.index, name, payload, from_container=True), ctx))
    documents = policy.decide(items, ctx.checks)
    timing = judge_time(received_at, inbound.date, event, ctx.checks.date_gap_hours)
    status, documents = policy.message_status(documents, timing.late, event.late_policy)
    findings = list(timing.findings)
    if not any(d.role == policy.DOCUMENT for d in documents):
        findings.insert(0, found("message.no_document"))
    return MessageVerdict(status, tuple(findings), tuple(documents))
