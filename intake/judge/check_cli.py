"""`intake check FILE…`: the judgement mail gets, on local files, printed for a person.

Folders expand to the files in them, recursively; hidden files and Word's "~$"
lock files are skipped. Each file is judged as if it were sent alone, so a PDF
without its Word version is refused here as it would be by mail; the files
inside a winmail.dat are judged in its place. The exit code is 0 when every file
passes and 1 when any is refused or cannot be read.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TextIO

from intake.config import EventSettings
from intake.domain import DOCUMENT_WORDS, DocumentStatus
from intake.judge import judge_file, tnef
from intake.judge.filetype import WHAT
from intake.verdict import DocumentVerdict

ACCEPTED, REJECTED, NOT_A_DOCUMENT = (
    DocumentStatus.ACCEPTED,
    DocumentStatus.REJECTED,
    DocumentStatus.NOT_A_DOCUMENT,
)

_WIDTH = 100


def _files(paths: list[Path], out: TextIO) -> tuple[list[Path], int]:
    """The files to check, and how many of the given paths could not be found."""
    files: list[Path] = []
    missing = 0
    for path in paths:
        if path.is_dir():
            for item in sorted(path.rglob("*")):
                hidden = any(p.startswith((".", "~$")) for p in item.relative_to(path).parts)
                if item.is_file() and not hidden:
                    files.append(item)
        elif path.is_file():
            files.append(path)
        else:
            out.write(f"{path}: no such file or folder\n")
            missing += 1
    return files, missing


def _wrap(text: str, indent: str) -> str:
    return textwrap.fill(
        text,
        _WIDTH,
        initial_indent=indent,
        subsequent_indent=indent + "  ",
        break_long_words=False,
        break_on_hyphens=False,
    )


def _print(name: str, verdict: DocumentVerdict, what: str, out: TextIO) -> None:
    word = DOCUMENT_WORDS[verdict.status]
    shown = word.upper() if verdict.status is DocumentStatus.REJECTED else word  # what to act on
    out.write(f"{name}: {shown} ({what})\n")
    for label, value in (("Title", verdict.title), ("Source", verdict.source)):
        if value:
            out.write(_wrap(f"{label}: {value}", "  ") + "\n")
    for contact in verdict.contacts:
        shown = ", ".join(str(v) for v in contact.values() if v)
        if shown:
            out.write(_wrap(f"Contact: {shown}", "  ") + "\n")
    findings = verdict.findings
    for n, finding in enumerate(findings):
        out.write(_wrap(f"{finding.severity.value.upper()} {finding.code}: {finding.message}", "  ") + "\n")
        following = findings[n + 1] if n + 1 < len(findings) else None
        if following is None or following.fix != finding.fix:  # one fix for a run of the same
            out.write(_wrap(f"Fix: {finding.fix}", "      ") + "\n")


def _what(verdict: DocumentVerdict) -> str:
    return WHAT.get(verdict.detected_type, "a file of another kind")


def run_check(paths: list[Path], event: EventSettings, out: TextIO) -> int:
    files, missing = _files(paths, out)
    accepted, refused, other = (DOCUMENT_WORDS[s] for s in (ACCEPTED, REJECTED, NOT_A_DOCUMENT))
    counts = {accepted: 0, refused: missing, other: 0}
    if not files and not missing:
        out.write("no files to check\n")
        return 1
    for path in files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            out.write(f"{path}: cannot be read ({exc.strerror})\n")
            counts[refused] += 1
            continue
        verdict = judge_file(path.name, data, event)
        judged = [(str(path), verdict)]
        if verdict.detected_type == "tnef" and verdict.status is DocumentStatus.NOT_A_DOCUMENT:
            judged = [
                (f"{path} > {name or 'unnamed'}", judge_file(name, payload, event))
                for name, payload in tnef.unpack(data).files
            ]
        for name, one in judged:
            _print(name, one, _what(one), out)
            word = DOCUMENT_WORDS[one.status] if one.status in (ACCEPTED, NOT_A_DOCUMENT) else refused
            counts[word] += 1
    total = sum(counts.values())
    summary = ", ".join(f"{n} {word}" for word, n in counts.items() if n)
    out.write(f"\n{total} file{'s' if total != 1 else ''} checked: {summary}.\n")
    return 1 if counts[refused] else 0
