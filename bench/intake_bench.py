#!/usr/bin/env python3
"""The intake benchmark: intake against its mailbox's physical limit and against a peer.

    python bench/intake_bench.py --messages 1000 [--backend sqlite|postgresql|both]
                                 [--peer django-helpdesk|none] [--workers N] [--batch-messages N]
                                 [--json bench/results/latest.json] [--attachment-kb 100]
    python bench/intake_bench.py --smoke        # 100 messages, SQLite, no peer: for CI

One run starts a private Dovecot (the test harness, tests/support/dovecot.py)
and an SMTP sink, fills a corpus folder with N realistic submissions, and then
measures, on the same messages, each system from an empty database:

1. raw fetch: IMAPClient alone fetching every message (BODY.PEEK[] +
   INTERNALDATE + RFC822.SIZE, explicit UID lists, protocol logging off),
   doing nothing else: the physical limit;
2. `intake poll --once` on SQLite and on PostgreSQL, as an operator runs it;
3. the peer, django-helpdesk 2.6.1 `manage.py get_email` (bench/peer.py);
4. messages/s, the peak PSS of each command's whole process tree, and the
   ratios intake / peer and intake / raw fetch.

Then, separately: a cProfile of the poll in-process over a subset, and the
peak memory of polling (and of judging alone) one message carrying a 25 MB
attachment.

MB means 2**20 bytes throughout. The figures go to stdout as a table and to a
JSON file; docs/performance.md explains them.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import logging
import os
import platform
import pstats
import random
import resource
import shutil
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

MB = 2**20
CORPUS_FOLDER = "Bench/Corpus"  # the pristine copy; INBOX is refilled from it
SCHEMA = 1

log = logging.getLogger("intake_bench")


# ---------------------------------------------------------------- small helpers


def rss_mb() -> float:
    """Resident set size of this process now."""
    with open("/proc/self/statm") as fh:
        resident_pages = int(fh.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / MB


def peak_rss_mb() -> float:
    """The highest RSS of this process image (VmHWM).

    Not ru_maxrss: across fork + exec, Linux folds the parent's peak into the
    child's ru_maxrss, so a phase would report the orchestrator's peak.
    """
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def chunks(items: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def say(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------- corpus
#
# A .docx is rebuilt for every message from a template (one per contributor),
# replacing a reference number in word/document.xml and the embedded image:
# every attachment is distinct (as real submissions are; the blob store and
# any cache see no repeats), and no unchanged part is compressed again.

_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")


@dataclass(frozen=True)
class _ZipEntry:
    name: bytes
    method: int
    dos_time: int
    dos_date: int
    crc: int
    size: int
    data: bytes  # as stored in the archive (deflated or stored)


def _deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


class DocxTemplate:
    """A .docx whose reference marker and image can be replaced cheaply."""

    DOCUMENT = "word/document.xml"

    def __init__(self, docx: bytes, marker: bytes) -> None:
        import zipfile

        self.marker = marker
        self.entries: list[_ZipEntry] = []
        self.document_xml = b""
        self.image_name: str | None = None
        with zipfile.ZipFile(io.BytesIO(docx)) as archive:
            for info in archive.infolist():
                start = info.header_offset
                fields = _LOCAL.unpack_from(docx, start)
                data_at = start + _LOCAL.size + fields[9] + fields[10]
                self.entries.append(
                    _ZipEntry(
                        name=info.filename.encode(),
                        method=info.compress_type,
                        dos_time=fields[4],
                        dos_date=fields[5],
                        crc=info.CRC,
                        size=info.file_size,
                        data=docx[data_at : data_at + info.compress_size],
                    )
                )
                if info.filename == self.DOCUMENT:
                    self.document_xml = archive.read(info)
                elif info.filename.startswith("word/media/") and info.filename.endswith(".png"):
                    self.image_name = info.filename
        if marker not in self.document_xml:
            raise ValueError("the reference marker is not in word/document.xml")

    def render(self, reference: bytes, image: bytes | None) -> bytes:
        if len(reference) != len(self.marker):
            raise ValueError("the reference must be as long as the marker")
        out = io.BytesIO()
        central: list[bytes] = []
        for entry in self.entries:
            name = entry.name.decode()
            if name == self.DOCUMENT:
                plain = self.document_xml.replace(self.marker, reference)
                entry = _ZipEntry(
                    entry.name,
                    8,
                    entry.dos_time,
                    entry.dos_date,
                    zlib.crc32(plain),
                    len(plain),
                    _deflate(plain),
                )
            elif name == self.image_name and image is not None:
                # PNG data is already compressed: stored, as Word does for media.
                entry = _ZipEntry(
                    entry.name, 0, entry.dos_time, entry.dos_date, zlib.crc32(image), len(image), image
                )
            offset = out.tell()
            out.write(
                _LOCAL.pack(
                    0x04034B50,
                    20,
                    0,
                    entry.method,
                    entry.dos_time,
                    entry.dos_date,
                    entry.crc,
                    len(entry.data),
                    entry.size,
                    len(entry.name),
                    0,
                )
            )
            out.write(entry.name)
            out.write(entry.data)
            central.append(
                _CENTRAL.pack(
                    0x02014B50,
                    20,
                    20,
                    0,
                    entry.method,
                    entry.dos_time,
                    entry.dos_date,
                    entry.crc,
                    len(entry.data),
                    entry.size,
                    len(entry.name),
                    0,
                    0,
                    0,
                    0,
                    0,
                    offset,
                )
                + entry.name
            )
        directory_at = out.tell()
        for record in central:
            out.write(record)
        directory_size = out.tell() - directory_at
        out.write(_END.pack(0x06054B50, 0, 0, len(central), len(central), directory_size, directory_at, 0))
        return out.getvalue()


def random_png(payload_bytes: int, rng: random.Random, width: int = 256) -> bytes:
    """A valid PNG of random RGB pixels (incompressible), about `payload_bytes` long."""
    row = 1 + 3 * width
    height = max(1, payload_bytes // row)
    pixels = bytearray(rng.randbytes(row * height))
    pixels[0::row] = bytes(height)  # filter type 0 at the start of each row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(pixels), 0))
        + chunk(b"IEND", b"")
    )


def make_pdf(title: str, payload_bytes: int, rng: random.Random) -> bytes:
    """A one-page PDF with a title line and an embedded (random, already compressed) image."""
    text = title.encode("ascii", "replace").replace(b"\\", b"").replace(b"(", b"").replace(b")", b"")
    content = b"BT /F1 14 Tf 72 770 Td (" + text + b") Tj ET q 451 0 0 300 72 400 cm /Im1 Do Q"
    image = rng.randbytes(payload_bytes)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /XObject << /Im1 5 0 R >> /Font << /F1 6 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Type /XObject /Subtype /Image /Width 640 /Height 480 /ColorSpace /DeviceRGB "
        b"/BitsPerComponent 8 /Filter /DCTDecode /Length %d >>\nstream\n%s\nendstream" % (len(image), image),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref_at = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref_at))
    return out.getvalue()


TITLES = (
    "Proposed update to the metaverse standardization roadmap",
    "Interoperability of avatars across virtual worlds",
    "Digital identity and trust in immersive environments",
    "Terminology for metaverse services",
    "Use cases for industrial digital twins",
    "Accessibility requirements for immersive platforms",
    "Network requirements for extended reality",
    "Metaverse standards landscape: gap analysis",
    "Privacy by design for persistent virtual spaces",
    "Spatial computing and 3D asset formats",
    "Economic interoperability of virtual goods",
    "Sustainability of metaverse infrastructure",
)

_VOCABULARY = (
    "interoperability standardization metaverse network latency avatar identity trust "
    "rendering spatial asset format protocol registry governance roadmap requirement "
    "architecture reference framework platform service provider user device headset "
    "bandwidth edge cloud synchronization persistence security privacy accessibility "
    "recommendation study group question liaison contribution proposal text clause "
    "annex figure table scenario stakeholder ecosystem economy token virtual physical "
    "twin sensor haptic audio video codec quality experience measurement evaluation"
)
VOCABULARY = tuple(_VOCABULARY.split())

# Local words for "contribution", for attachment file names in the sender's script.
_FILE_STEMS = (
    "Contribution",
    "Wkład",
    "文稿",
    "Вклад",
    "مساهمة",
    "Input",
    "Contribución",
    "Bidrag",
    "योगदान",
    "Đóng góp",
    "寄書",
    "Contribution",
)

_AUTO_SUBJECTS = (
    "Automatic reply: {s}",
    "Abwesenheitsnotiz: {s}",
    "Réponse automatique : {s}",
    "Out of Office: {s}",
    "自动回复: {s}",
    "Автоматический ответ: {s}",
)

# Shares of each kind, out of 50 consecutive messages.
_KIND_SLOTS = {
    5: "late",
    17: "late",
    29: "late",
    41: "late",
    9: "pdf_only",
    23: "pdf_only",
    37: "pdf_only",
    13: "no_attachment",
    31: "no_attachment",
    47: "no_attachment",
    3: "auto_reply",
    21: "auto_reply",
    44: "auto_reply",
}
KINDS = ("valid", "late", "pdf_only", "no_attachment", "auto_reply")


def kind_of(index: int) -> str:
    return _KIND_SLOTS.get(index % 50, "valid")


@dataclass(frozen=True)
class Submission:
    kind: str
    raw: bytes
    received_at: datetime  # becomes the message's INTERNALDATE


class Corpus:
    """Realistic submissions, the same for the same seed; built with intake.samples."""

    MARKER = b"BENCH-REF-0000000"

    def __init__(self, event: Any, attachment_kb: int, seed: int) -> None:
        from intake.samples import CONTRIBUTORS, Contributor

        self.event = event
        self.seed = seed
        self.attachment_bytes = attachment_kb * 1024
        self.contributors = tuple(CONTRIBUTORS) + (
            Contributor("José Núñez", "jose.nunez@example.es", "Telefónica I+D", "Spain"),
            Contributor("Søren Ødegård", "soren.odegard@example.dk", "Dansk Netværk", "Denmark"),
            Contributor("महेश शर्मा", "mahesh.sharma@example.in", "C-DOT", "India"),
            Contributor("Nguyễn Thị Hoa", "hoa.nguyen@example.vn", "VNPT Technology", "Viet Nam"),
            Contributor("山田太郎", "taro.yamada@example.jp", "NTT", "Japan"),
            Contributor("Chloé Lefèvre", "chloe.lefevre@example.fr", "Orange Labs", "France"),
        )
        self._templates: dict[int, tuple[DocxTemplate, int]] = {}

    def template(self, who: int) -> tuple[DocxTemplate, int]:
        """The docx template of one contributor and the pixel bytes of its image (0: none)."""
        if who not in self._templates:
            self._templates[who] = self._build_template(who, self.attachment_bytes)
        return self._templates[who]

    def _build_template(self, who: int, target: int) -> tuple[DocxTemplate, int]:
        import docx
        from docx.shared import Cm

        from intake.samples import make_docx

        contact = self.contributors[who]
        rng = random.Random(f"{self.seed}-template-{who}")
        title = TITLES[who % len(TITLES)]
        abstract = (
            f"This contribution addresses {title.lower()} and proposes text for the "
            "JCA-MV roadmap, with use cases, requirements and a gap analysis."
        )

        def compose(image: bytes | None) -> bytes:
            base = make_docx(self.event, title, contact.organization, contact, abstract)
            document = docx.Document(io.BytesIO(base))
            document.add_paragraph(f"Reference: {self.MARKER.decode()}")
            for section in range(1, 6):
                document.add_heading(f"{section + 1} Discussion, part {section}", level=1)
                for _ in range(12):
                    words = rng.choices(VOCABULARY, k=rng.randint(60, 110))
                    document.add_paragraph(" ".join(words).capitalize() + ".")
            if image is not None:
                document.add_picture(io.BytesIO(image), width=Cm(15))
            out = io.BytesIO()
            document.save(out)
            return out.getvalue()

        without_image = len(compose(None))
        image_bytes = max(0, target - without_image - 1500)  # 1.5 KB: picture markup and rels
        if image_bytes < 2048:
            return DocxTemplate(compose(None), self.MARKER), 0
        return DocxTemplate(compose(random_png(image_bytes, rng)), self.MARKER), image_bytes

    def docx(self, who: int, reference: str, rng: random.Random) -> bytes:
        template, pixel_bytes = self.template(who)
        image = random_png(pixel_bytes, rng) if pixel_bytes else None  # same dimensions, new pixels
        return template.render(reference.encode().ljust(len(self.MARKER), b"0")[: len(self.MARKER)], image)

    def submission(self, index: int) -> Submission:
        from intake.samples import DOCX, Contributor, make_message

        rng = random.Random(f"{self.seed}-{index}")
        kind = kind_of(index)
        who = index % len(self.contributors)
        base = self.contributors[who]
        local, _, domain = base.address.partition("@")
        sender = Contributor(
            base.name,
            f"{local}.{(index // len(self.contributors)) % 40}@{domain}",
            base.organization,
            base.country,
        )
        event = self.event
        deadline: datetime = event.deadline
        if kind == "late":
            received = deadline + timedelta(minutes=rng.randint(1, 72 * 60))
        else:
            received = deadline - timedelta(minutes=rng.randint(1, 30 * 24 * 60))
        sent = received - timedelta(seconds=rng.randint(2, 600))
        title = TITLES[(index // 7) % len(TITLES)]
        stem = _FILE_STEMS[who % len(_FILE_STEMS)]
        reference = f"BENCH-REF-{index:07d}"
        greeting = f"Dear {event.acronym} secretariat,\n\n"
        signature = f"\n\nBest regards,\n{sender.name}\n{sender.organization}, {sender.country}\n"

        attachments: list[tuple[str, str, bytes]] = []
        headers: dict[str, str] = {}
        if kind in ("valid", "late"):
            subject = f"{event.acronym} input document: {title}"
            body = f'{greeting}Please find attached our input document "{title}".{signature}'
            attachments.append(
                (f"{stem} {index:05d} – {title[:30]}.docx", DOCX, self.docx(who, reference, rng))
            )
        elif kind == "pdf_only":
            subject = f"Contribution (PDF): {title}"
            body = f"{greeting}Our contribution is attached as PDF; the Word file will follow.{signature}"
            attachments.append(
                (
                    f"{stem} {index:05d}.pdf",
                    "application/pdf",
                    make_pdf(f"{reference} {title}", self.attachment_bytes - 1200, rng),
                )
            )
        elif kind == "no_attachment":
            subject = rng.choice(
                (
                    "Question about the meeting",
                    "Remote participation?",
                    f"Deadline for {event.acronym} contributions",
                    "Visa letter request",
                )
            )
            body = (
                f"{greeting}Could you tell us whether remote participation will be possible "
                f"for the meeting in {event.meeting_place}?{signature}"
            )
        else:
            subject = rng.choice(_AUTO_SUBJECTS).format(s=f"{event.acronym} meeting announcement")
            body = f"I am out of the office until {(received + timedelta(days=9)):%d %B}.{signature}"
            headers = {
                "Auto-Submitted": "auto-replied",
                "X-Autoreply": "yes",
                "In-Reply-To": f"<announcement-{index % 17}@itu.int>",
            }
        raw = make_message(
            sender, event.address, subject, body, attachments, date=sent, extra_headers=headers
        )
        return Submission(kind, raw, received)

    def large_submission(self, megabytes: int) -> Submission:
        """One valid submission whose .docx is about `megabytes` MB (a big embedded image)."""
        from intake.samples import DOCX, make_message

        template, _ = self._build_template(0, megabytes * MB)
        received = self.event.deadline - timedelta(hours=5)
        attachment = template.render(b"BENCH-REF-LARGE00", None)
        raw = make_message(
            self.contributors[0],
            self.event.address,
            f"{self.event.acronym} input document with many figures",
            "Dear secretariat,\n\nPlease find our (large) contribution attached.\n",
            [("Large contribution.docx", DOCX, attachment)],
            date=received - timedelta(minutes=1),
        )
        return Submission("valid", raw, received)


# ------------------------------------------------------------ memory of a process tree


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                found += [int(p) for p in fh.read().split()]
        except OSError:
            continue
    return found


def tree_pids(root: int) -> list[int]:
    """The process and all its descendants (worker processes included)."""
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo += _children(pid)
    return pids


def _cpu_ticks(pid: int) -> int:
    """utime + stime of one process (its own, not its children's), in clock ticks."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def _memory_kb(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of one process in KiB; (0, 0) when it is gone."""
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1])
    except OSError:
        pass
    return pss, rss


class TreeSampler:
    """Samples the PSS of a process tree every `every` seconds, in a thread of the orchestrator.

    PSS (proportional set size) counts a page shared by k processes as 1/k in
    each, so the sum over the tree is the memory the whole command uses, worker
    processes included, without counting the shared libraries k times.
    """

    def __init__(self, pid: int, every: float = 0.05) -> None:
        self.pid = pid
        self.every = every
        self.samples: list[tuple[float, float, float, int]] = []  # (t, PSS MB, RSS MB, processes)
        self.ticks: dict[int, int] = {}  # CPU ticks last seen, per process of the tree
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-sampler", daemon=True)
        self.started = time.perf_counter()

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = tree_pids(self.pid)
            pss = rss = 0
            for pid in pids:
                p, r = _memory_kb(pid)
                pss, rss = pss + p, rss + r
                self.ticks[pid] = max(self.ticks.get(pid, 0), _cpu_ticks(pid))
            if pss:
                t = time.perf_counter() - self.started
                self.samples.append((t, pss / 1024, rss / 1024, len(pids)))
            self._stop.wait(self.every)

    def summary(self) -> dict[str, Any]:
        if not self.samples:
            return {"peak_pss_mb": None, "peak_rss_mb": None, "processes": 0, "samples": 0}
        end = self.samples[-1][0]
        after = [s for s in self.samples if s[0] >= end / 5]
        return {
            "peak_pss_mb": max(s[1] for s in self.samples),
            "peak_rss_mb": max(s[2] for s in self.samples),
            "processes": max(s[3] for s in self.samples),
            "samples": len(self.samples),
            # CPU seconds of every process of the tree (sampled: the last 50 ms of each may be missed)
            "cpu_seconds": sum(self.ticks.values()) / os.sysconf("SC_CLK_TCK"),
            # memory over the run: at the end of its first fifth, and the highest after that
            "pss_at_fifth_mb": after[0][1] if after else None,
            "pss_max_after_fifth_mb": max(s[1] for s in after) if after else None,
        }


def timed_command(
    command: list[str], *, cwd: Path, env: dict[str, str], timeout: float, log_path: Path
) -> dict[str, Any]:
    """Run a command to its end; its wall time, exit code and the PSS of its process tree."""
    with log_path.open("w", encoding="utf-8") as log_file:
        started = time.perf_counter()
        proc = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=log_file, stderr=subprocess.STDOUT, text=True
        )
        with TreeSampler(proc.pid) as sampler:
            try:
                code = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise BenchError(f"{' '.join(command[:4])} … did not finish in {timeout:.0f} s") from None
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "exit": code, **sampler.summary()}


# ----------------------------------------------------------------- child phases


def phase_raw_fetch(spec: dict[str, Any]) -> dict[str, Any]:
    """IMAPClient alone, fetching every message of the folder in batches."""
    from imapclient import IMAPClient, SocketTimeout

    rounds = []
    for _ in range(spec["rounds"]):
        started = time.perf_counter()
        client = IMAPClient(
            spec["host"], port=spec["port"], ssl=False, timeout=SocketTimeout(connect=10, read=120)
        )
        client._imap.debug = 0  # IMAPClient's level 5 copies every literal: 7-10x slower
        client.login(spec["user"], spec["password"])
        client.select_folder(spec["folder"], readonly=True)
        uids = sorted(client.search(["ALL"]))
        ready = time.perf_counter()
        count = total = 0
        for batch in chunks(uids, spec["batch"]):
            data = client.fetch(batch, [b"BODY.PEEK[]", b"INTERNALDATE", b"RFC822.SIZE"])
            for item in data.values():
                total += len(item[b"BODY[]"])
                count += 1
            del data
        done = time.perf_counter()
        client.logout()
        rounds.append(
            {"seconds": done - ready, "setup_seconds": ready - started, "messages": count, "bytes": total}
        )
    best = sorted(rounds, key=lambda r: r["seconds"])[len(rounds) // 2]  # the median round
    return {
        "messages": best["messages"],
        "bytes": best["bytes"],
        "seconds": best["seconds"],
        "setup_seconds": best["setup_seconds"],
        "msgs_per_s": best["messages"] / best["seconds"],
        "mb_per_s": best["bytes"] / MB / best["seconds"],
        "rounds": [r["messages"] / r["seconds"] for r in rounds],
        "batch": spec["batch"],
        "peak_rss_mb": peak_rss_mb(),
    }


def _component(filename: str, function: str) -> str:
    """A coarse owner for a profiled function, to say where the time goes."""
    if filename == "~":  # a C function
        for needle, name in (
            ("fsync", "fsync (blob store)"),
            ("sha256", "sha-256"),
            ("hashlib", "sha-256"),
            ("zlib", "zlib"),
            ("sqlite3", "SQLite (C)"),
            ("psycopg", "PostgreSQL driver (C)"),
            ("socket", "socket I/O"),
            ("ssl", "socket I/O"),
            ("posix", "file system calls"),
            ("io.", "file system calls"),
            ("re.Pattern", "regular expressions"),
            ("binascii", "base64 (C)"),
            ("lxml", "lxml (C)"),
            ("magic", "libmagic"),
        ):
            if needle in function:
                return name
        return "other C built-ins"
    for needle, name in (
        ("/intake/", "intake"),
        ("/mailparser/", "mail-parser"),
        ("/email/", "email (stdlib)"),
        ("/sqlalchemy/", "SQLAlchemy"),
        ("/imapclient/", "IMAPClient"),
        ("imaplib", "imaplib"),
        ("/psycopg", "psycopg"),
        ("/sqlite3/", "sqlite3"),
        ("/docx/", "python-docx"),
        ("/lxml/", "lxml"),
        ("zipfile", "zipfile"),
        ("/magic/", "python-magic"),
        ("/jinja2/", "jinja2"),
        ("/olefile/", "olefile"),
        ("base64", "base64"),
        ("/encodings/", "codecs"),
        ("/json/", "json"),
        ("/logging/", "logging"),
        ("/re/", "regular expressions"),
        ("/alembic/", "alembic"),
    ):
        if needle in filename:
            return name
    return "other Python"


def _short(filename: str) -> str:
    for prefix in sorted({str(REPO) + "/", *(p + "/" for p in sys.path if p)}, key=len, reverse=True):
        if filename.startswith(prefix):
            return filename[len(prefix) :]
    return filename


def profile_summary(profiler: cProfile.Profile, top: int = 25) -> dict[str, Any]:
    stats = pstats.Stats(profiler)
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for _cc, _nc, tt, _ct, _callers in table.values()) or 1.0
    rows = []
    components: Counter[str] = Counter()
    for (filename, line, function), (_cc, ncalls, tottime, cumtime, _callers) in table.items():
        where = "built-in" if filename == "~" else f"{_short(filename)}:{line}"
        rows.append(
            {"function": function, "where": where, "calls": ncalls, "tottime": tottime, "cumtime": cumtime}
        )
        components[_component(filename, function)] += tottime
    by_tottime = sorted(rows, key=lambda r: r["tottime"], reverse=True)[:top]
    intake_rows = [r for r in rows if r["where"].startswith("intake/")]
    by_cumtime = sorted(intake_rows, key=lambda r: r["cumtime"], reverse=True)[:top]
    return {
        "total_seconds": total,
        "top_tottime": by_tottime,
        "top_cumtime_intake": by_cumtime,
        "by_component": {k: {"seconds": v, "share": v / total} for k, v in components.most_common()},
    }


def phase_poll(spec: dict[str, Any]) -> dict[str, Any]:
    """The poll in-process (for the profile and the large message): until every message is recorded."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from sqlalchemy import func, select

    from intake import db
    from intake.config import load_settings
    from intake.models import InboundMessage
    from intake.pipeline import poll_once
    from intake.store import BlobStore

    settings = load_settings(spec["config"], env={})
    engine = db.make_engine(settings.database_url)
    sessions = db.make_sessionmaker(engine)
    store = BlobStore(settings.data_dir)
    with sessions() as session:  # connect and warm the pool outside the timing
        session.execute(select(func.count()).select_from(InboundMessage)).scalar_one()
    baseline = rss_mb()
    profiler = cProfile.Profile() if spec.get("profile") else None
    recorded = passes = 0
    seconds = 0.0
    while recorded < spec["expected"] and passes < 5:
        started = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        report = poll_once(settings, sessions, store)
        if profiler is not None:
            profiler.disable()
        seconds += time.perf_counter() - started
        passes += 1
        recorded += sum(report.recorded.values())
        if not report.recorded and not report.filed:
            break
    with sessions() as session:
        statuses = dict(
            session.execute(select(InboundMessage.status, func.count()).group_by(InboundMessage.status)).all()
        )
    engine.dispose()
    result: dict[str, Any] = {
        "messages": recorded,
        "seconds": seconds,
        "msgs_per_s": recorded / seconds if seconds else 0.0,
        "baseline_rss_mb": baseline,
        "peak_rss_mb": peak_rss_mb(),
        "statuses": {str(k): v for k, v in statuses.items()},
    }
    if profiler is not None:
        result["profile"] = profile_summary(profiler)
    return result


def phase_judge(spec: dict[str, Any]) -> dict[str, Any]:
    """Parse and judge one message from a file, as the pipeline's examine stage does, nothing else."""
    from intake.config import load_settings
    from intake.examine import examine
    from intake.mailbox import RawMessage

    settings = load_settings(spec["config"], env={})
    raw = Path(spec["message"]).read_bytes()
    received = datetime.fromisoformat(spec["received_at"])
    baseline = rss_mb()
    started = time.perf_counter()
    message = RawMessage(uid=1, received_at=received, size=len(raw), raw=raw)
    verdict = examine(message, settings.event, settings.imap.max_message_bytes).verdict
    seconds = time.perf_counter() - started
    return {
        "message_bytes": len(raw),
        "baseline_rss_mb": baseline,
        "peak_rss_mb": peak_rss_mb(),
        "seconds": seconds,
        "status": str(verdict.status),
        "documents": len(verdict.documents),
    }


PHASES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "raw-fetch": phase_raw_fetch,
    "poll": phase_poll,
    "judge": phase_judge,
}


class BenchError(RuntimeError):
    pass


def run_phase(name: str, spec: dict[str, Any], workdir: Path, timeout: float = 3600) -> dict[str, Any]:
    """Run one phase in a fresh interpreter, so that its memory is its own (PSS sampled from outside)."""
    spec_path = workdir / f"spec-{name}-{time.monotonic_ns()}.json"
    spec_path.write_text(json.dumps(spec))
    log_path = spec_path.with_suffix(".log")
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
    command = [sys.executable, str(Path(__file__).resolve()), "--phase", name, "--spec", str(spec_path)]
    outside = timed_command(command, cwd=REPO, env=env, timeout=timeout, log_path=log_path)
    output = log_path.read_text(encoding="utf-8", errors="replace")
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    if outside["exit"] != 0 or not lines:
        raise BenchError(f"phase {name} failed (exit {outside['exit']}):\n{output[-4000:]}")
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    result["peak_pss_mb"] = outside["peak_pss_mb"]
    return result


# ------------------------------------------------------------- the mailbox side


def reset_mailbox(server: Any) -> None:
    """Empty the INBOX and remove the filing folders, keeping the corpus."""
    with server.client() as client:
        names = [name for _flags, _delim, name in client.list_folders()]
        for name in sorted(names, key=lambda n: n.count("/"), reverse=True):
            if name == "Intake" or name.startswith("Intake/"):
                client.delete_folder(name)
        client.select_folder("INBOX")
        uids = client.search(["ALL"])
        for batch in chunks(sorted(uids), 1000):
            client.delete_messages(batch)
        client.expunge()


def fill_inbox(server: Any, limit: int | None = None) -> int:
    """Copy the corpus (or its first `limit` messages) into the INBOX, server-side."""
    with server.client() as client:
        client.select_folder(CORPUS_FOLDER, readonly=True)
        uids = sorted(client.search(["ALL"]))[:limit]
        for batch in chunks(uids, 500):
            client.copy(batch, "INBOX")
    return len(uids)


# -------------------------------------------------------------------- machine


def _version(command: list[str]) -> str | None:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else None


def machine_info(pg_admin_url: str | None) -> dict[str, Any]:
    from tests.support.dovecot import find_dovecot

    memory_kb = 0
    cpu = platform.processor()
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    postgres = None
    if pg_admin_url:
        try:
            import psycopg

            with psycopg.connect(
                pg_admin_url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=5
            ) as conn:
                row = conn.execute("SHOW server_version").fetchone()
                postgres = row[0] if row else None
        except Exception:
            postgres = None
    dovecot = find_dovecot()

    def version(package: str) -> str | None:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(memory_kb / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "dovecot": _version([dovecot, "--version"]) if dovecot else None,
        "postgresql": postgres,
        "sqlite": sqlite3.sqlite_version,
        "load_average": os.getloadavg(),  # other work on a shared machine skews absolute figures
        "packages": {
            p: version(p)
            for p in ("imapclient", "mail-parser", "sqlalchemy", "psycopg", "python-docx", "python-magic")
        },
    }


def code_version() -> dict[str, Any]:
    """The commit measured, and how many files of intake/ differ from it."""
    head = _version(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    status = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--", "intake"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    changed = [line for line in status.stdout.splitlines() if line.strip()]
    return {"commit": head, "intake_files_changed": len(changed)}


# --------------------------------------------------------------------- the run


@dataclass
class Options:
    messages: int
    backends: tuple[str, ...]
    peer: str | None
    workers: int | None
    batch_messages: int | None
    json_path: Path
    attachment_kb: int
    large_mb: int
    fetch_batch: int
    fetch_rounds: int
    profile_messages: int
    seed: int
    smoke: bool
    keep: bool


def _new_database(backend: str, directory: Path) -> str:
    from intake import db

    if backend == "sqlite":
        directory.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{directory / 'intake.db'}"
    else:
        from tests.support.databases import create_pg_database

        url = create_pg_database()
    db.upgrade(url)
    return url


def _drop_database(url: str) -> None:
    if url.startswith("postgres"):
        from tests.support.databases import drop_pg_database

        drop_pg_database(url)


def _pg_available() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        import psycopg

        from tests.support.databases import PG_ADMIN_URL

        with psycopg.connect(
            PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=5
        ) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return f"PostgreSQL is not reachable: {exc}"
    return None


_STAGES_LINE = "poll stages:"


def _stages_from_log(text: str) -> dict[str, float]:
    """The stage seconds `intake poll` logs at the end of a poll ("poll stages: fetch 0.31 s, ...")."""
    stages: dict[str, float] = {}
    for line in text.splitlines():
        if _STAGES_LINE in line:
            timed, _, here = line.split(_STAGES_LINE, 1)[1].partition(";")
            if here.strip().endswith("examined in the poller"):  # "; 312 examined in the poller"
                stages["examined in the poller"] = float(here.split()[0])
            for part in timed.split(","):
                name, _, value = part.strip().rpartition(" ")
                name, _, number = name.rpartition(" ")
                if name and value == "s":
                    try:
                        stages[name] = stages.get(name, 0.0) + float(number)
                    except ValueError:
                        continue
    return stages


def _intake_outcome(url: str) -> dict[str, Any]:
    from sqlalchemy import func, select

    from intake import db
    from intake.models import InboundMessage, Reply

    engine = db.make_engine(url)
    try:
        with db.make_sessionmaker(engine)() as session:
            statuses = dict(
                session.execute(
                    select(InboundMessage.status, func.count()).group_by(InboundMessage.status)
                ).all()
            )
            replies = dict(session.execute(select(Reply.status, func.count()).group_by(Reply.status)).all())
            unfiled = session.execute(
                select(func.count()).select_from(InboundMessage).where(InboundMessage.filed_at.is_(None))
            ).scalar_one()
    finally:
        engine.dispose()
    return {
        "recorded": sum(statuses.values()),
        "statuses": {str(k): v for k, v in statuses.items()},
        "replies": {str(k): v for k, v in replies.items()},
        "unfiled": unfiled,
    }


def intake_config(
    directory: Path, server: Any, sink: Any, url: str, batch_messages: int | None = None
) -> Any:
    """A config file for intake on the benchmark's Dovecot, SMTP sink and database."""
    from tests.support.intake_env import write_config

    return write_config(
        directory,
        server.host,
        server.port,
        server.user,
        server.password,
        url,
        smtp_port=sink.port,
        imap_extra=f"batch_messages = {batch_messages}" if batch_messages else "",
    )


def compile_bytecode() -> None:
    """Write intake's bytecode before its timed runs, as `pip install` does for an installed
    intake (the Docker image) and as Python does on a first run. The project's venv installs
    intake editable, and a machine that sets PYTHONDONTWRITEBYTECODE (these do) would otherwise
    compile every module from source in every run, in the poller and again in each worker
    (~0.1 s each): a cost no installed intake pays. The peer is pip-installed, bytecode and all."""
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(REPO / "intake")],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def measure_intake(
    backend: str, server: Any, sink: Any, workdir: Path, count: int, total_bytes: int, options: Options
) -> dict[str, Any]:
    """`intake poll --once` as an operator runs it, on a fresh database, timed from outside."""

    url = _new_database(backend, workdir / backend)
    try:
        env_config = intake_config(workdir / backend, server, sink, url, options.batch_messages)
        env = env_config.env()
        if options.workers is not None:
            env["INTAKE_WORKERS"] = str(options.workers)
        env["INTAKE_LOG_LEVEL"] = "INFO"
        before = len(sink.received())
        result = timed_command(
            env_config.command("poll", "--once"),
            cwd=REPO,
            env=env,
            timeout=7200,
            log_path=workdir / f"intake-{backend}.log",
        )
        log_text = (workdir / f"intake-{backend}.log").read_text(encoding="utf-8", errors="replace")
        if result["exit"] != 0:
            raise BenchError(f"intake poll --once on {backend} exited {result['exit']}:\n{log_text[-4000:]}")
        outcome = _intake_outcome(url)
    finally:
        _drop_database(url)
    seconds = result["seconds"]
    return {
        **result,
        **outcome,
        "messages": count,
        "msgs_per_s": outcome["recorded"] / seconds,
        "mb_per_s": total_bytes / MB / seconds,
        "smtp_received": len(sink.received()) - before,
        "stages": _stages_from_log(log_text),
    }


def measure_peer(server: Any, sink: Any, workdir: Path, count: int, total_bytes: int) -> dict[str, Any]:
    """django-helpdesk's `manage.py get_email` on the same INBOX, on a fresh project, timed from outside."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import peer

    python = peer.ensure_venv()
    imap = {"host": server.host, "port": server.port, "user": server.user, "password": server.password}
    site = peer.make_site(python, workdir / "peer", imap, "INBOX", sink.port)
    before = len(sink.received())
    result = timed_command(
        site.command("get_email", "--quiet"),
        cwd=site.directory,
        env=site.env(),
        timeout=7200,
        log_path=workdir / "peer.log",
    )
    if result["exit"] != 0:
        raise BenchError(f"get_email exited {result['exit']}:\n{(workdir / 'peer.log').read_text()[-4000:]}")
    tickets = site.count("Ticket")
    with server.client() as client:
        client.select_folder("INBOX", readonly=True)
        left = len(client.search(["NOT", "DELETED"]))
    seconds = result["seconds"]
    return {
        **result,
        "system": f"django-helpdesk {peer.VERSION}",
        "messages": count,
        "processed": count - left,
        "tickets": tickets,
        "left_in_inbox": left,
        "msgs_per_s": (count - left) / seconds,
        "mb_per_s": total_bytes / MB / seconds,
        "smtp_received": len(sink.received()) - before,
    }


def build_corpus(server: Any, event: Any, options: Options) -> tuple[Corpus, dict[str, Any]]:
    corpus = Corpus(event, options.attachment_kb, options.seed)
    say(f"building and appending {options.messages} submissions to {CORPUS_FOLDER}")
    kinds: Counter[str] = Counter()
    total_bytes = largest = 0
    t0 = time.perf_counter()
    for start in range(0, options.messages, 250):
        batch = [corpus.submission(i) for i in range(start, min(options.messages, start + 250))]
        server.append_many(CORPUS_FOLDER, [(s.raw, s.received_at) for s in batch])
        for s in batch:
            kinds[s.kind] += 1
            total_bytes += len(s.raw)
            largest = max(largest, len(s.raw))
    sizes = [
        len(corpus.docx(who, "BENCH-REF-SIZE", random.Random(who))) for who in range(len(corpus.contributors))
    ]
    return corpus, {
        "messages": options.messages,
        "bytes": total_bytes,
        "mean_kb": total_bytes / max(1, options.messages) / 1024,
        "largest_bytes": largest,
        "docx_kb": statistics.mean(sizes) / 1024,
        "kinds": dict(kinds),
        "senders": min(options.messages, len(corpus.contributors) * 40),
        "build_and_append_seconds": time.perf_counter() - t0,
    }


def run(options: Options) -> dict[str, Any]:
    from intake.config import load_settings
    from tests.support.databases import PG_ADMIN_URL
    from tests.support.dovecot import Dovecot
    from tests.support.smtp import SmtpSink

    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="intake-bench-"))
    server = Dovecot(Dovecot.make_workdir("intake-bench-dovecot-"))
    sink = SmtpSink()
    results: dict[str, Any] = {
        "schema": SCHEMA,
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "mode": "smoke" if options.smoke else "full",
        "machine": machine_info(PG_ADMIN_URL),
        "code": code_version(),
        "command": " ".join(sys.argv),
    }
    try:
        server.start()
        sink.start()
        results["machine"]["dovecot_port"] = server.port

        def config_for(name: str, url: str) -> Path:
            return intake_config(workdir / name, server, sink, url).config_path

        event = load_settings(config_for("event", f"sqlite:///{workdir / 'unused.db'}"), env={}).event
        corpus, results["corpus"] = build_corpus(server, event, options)
        total_bytes = results["corpus"]["bytes"]

        # -- the one table: every system on the same folder, each from an empty database -----
        systems: dict[str, Any] = {}
        reset_mailbox(server)
        count = fill_inbox(server)
        say(f"raw fetch of {count} messages")
        systems["raw fetch"] = run_phase(
            "raw-fetch",
            {
                "host": server.host,
                "port": server.port,
                "user": server.user,
                "password": server.password,
                "folder": "INBOX",
                "batch": options.fetch_batch,
                "rounds": options.fetch_rounds,
            },
            workdir,
        )
        pg_problem = _pg_available() if "postgresql" in options.backends else None
        compile_bytecode()
        for backend in options.backends:
            name = f"intake, {backend}"
            if backend == "postgresql" and pg_problem:
                say(f"skipping PostgreSQL: {pg_problem}")
                systems[name] = {"skipped": pg_problem}
                continue
            reset_mailbox(server)
            count = fill_inbox(server)
            say(f"intake poll --once on {backend}: {count} messages")
            systems[name] = measure_intake(backend, server, sink, workdir, count, total_bytes, options)
        if options.peer:
            reset_mailbox(server)
            count = fill_inbox(server)
            say(f"{options.peer} get_email: {count} messages")
            systems["peer"] = measure_peer(server, sink, workdir, count, total_bytes)
        results["systems"] = systems
        results["ratios"] = ratios(systems)

        # -- where the time goes --------------------------------------------------------
        if options.profile_messages > 0:
            reset_mailbox(server)
            count = fill_inbox(server, limit=options.profile_messages)
            url = _new_database("sqlite", workdir / "profile")
            say(f"profile: the poll under cProfile over {count} messages (SQLite, in-process)")
            profiled = run_phase(
                "poll",
                {"config": str(config_for("profile", url)), "expected": count, "profile": True},
                workdir,
            )
            results["profile"] = {
                "messages": count,
                "backend": "sqlite",
                "seconds": profiled["seconds"],
                **profiled["profile"],
            }

        # -- one large message ----------------------------------------------------------
        say(f"large: one submission with a {options.large_mb} MB .docx")
        reset_mailbox(server)
        large = corpus.large_submission(options.large_mb)
        server.append_many("INBOX", [(large.raw, large.received_at)])
        message_path = workdir / "large.eml"
        message_path.write_bytes(large.raw)
        url = _new_database("sqlite", workdir / "large")
        config = config_for("large", url)
        poll_large = run_phase("poll", {"config": str(config), "expected": 1}, workdir)
        judge_large = run_phase(
            "judge",
            {
                "config": str(config),
                "message": str(message_path),
                "received_at": large.received_at.isoformat(),
            },
            workdir,
        )
        results["large_message"] = {
            "attachment_mb": options.large_mb,
            "message_bytes": len(large.raw),
            "poll": {k: poll_large[k] for k in ("seconds", "baseline_rss_mb", "peak_rss_mb", "peak_pss_mb")},
            "judge": judge_large,
            "peak_pss_mb": max(poll_large["peak_pss_mb"] or 0, judge_large["peak_pss_mb"] or 0),
        }
    finally:
        sink.stop()
        server.kill()
        if not options.keep:
            shutil.rmtree(server.workdir, ignore_errors=True)
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            say(f"kept {workdir} and {server.workdir}")
    results["total_seconds"] = time.perf_counter() - started
    results["machine"]["load_average_at_end"] = os.getloadavg()
    results["goals"] = evaluate_goals(results)
    return results


def ratios(systems: dict[str, Any]) -> dict[str, float]:
    """intake / peer and intake / raw fetch, in messages per second, per backend."""
    out: dict[str, float] = {}
    raw, peer_result = systems.get("raw fetch"), systems.get("peer")
    for name, data in systems.items():
        if not name.startswith("intake") or "skipped" in data:
            continue
        if peer_result and peer_result["msgs_per_s"]:
            out[f"{name} / peer"] = data["msgs_per_s"] / peer_result["msgs_per_s"]
        if raw and raw["msgs_per_s"]:
            out[f"{name} / raw fetch"] = data["msgs_per_s"] / raw["msgs_per_s"]
    return out


# ---------------------------------------------------------------------- goals

GOAL_PEER_FACTOR = 5.0  # issue 10: at least 5x django-helpdesk on the same mailbox
GOAL_PEAK_MB = 150.0  # issue 10: peak memory of the whole process tree
GOAL_LARGE_MB = 300.0
GOAL_FLAT_MB = 10.0


def evaluate_goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    goals: list[dict[str, Any]] = []
    for name, data in results.get("systems", {}).items():
        if not name.startswith("intake") or "skipped" in data:
            continue
        ratio = results["ratios"].get(f"{name} / peer")
        if ratio is not None:
            goals.append(
                {
                    "goal": f"{name}: at least 5x the peer",
                    "value": f"{ratio:.1f}x",
                    "met": ratio >= GOAL_PEER_FACTOR,
                }
            )
        peak = data["peak_pss_mb"]
        goals.append(
            {"goal": f"{name}: peak PSS < 150 MB", "value": f"{peak:.0f} MB", "met": peak < GOAL_PEAK_MB}
        )
        fifth, later = data.get("pss_at_fifth_mb"), data.get("pss_max_after_fifth_mb")
        if fifth is not None and later is not None:
            goals.append(
                {
                    "goal": f"{name}: memory flat from the first fifth of the run to the end "
                    f"(growth < {GOAL_FLAT_MB:.0f} MB)",
                    "value": f"{fifth:.0f} -> max {later:.0f} MB",
                    "met": later - fifth < GOAL_FLAT_MB,
                }
            )
    large = results.get("large_message")
    if large:
        peak = large["peak_pss_mb"]
        goals.append(
            {
                "goal": f"{large['attachment_mb']} MB attachment: peak PSS < 300 MB",
                "value": f"{peak:.0f} MB",
                "met": peak < GOAL_LARGE_MB,
            }
        )
    return goals


# ---------------------------------------------------------------------- report


def format_table(results: dict[str, Any]) -> str:
    out: list[str] = []
    m, c = results["machine"], results["corpus"]
    out.append(
        f"intake benchmark ({results['mode']}, {results['generated_at']}): {c['messages']:,} messages, "
        f"{c['bytes'] / MB:.1f} MB (mean {c['mean_kb']:.0f} KB, .docx ~{c['docx_kb']:.0f} KB)"
    )
    out.append(
        f"machine: {m['cpus']} CPUs ({m['cpu']}), {m['memory_gb']} GB, Python {m['python']}, "
        f"Dovecot {(m['dovecot'] or '?').split()[0]}, PostgreSQL {m['postgresql'] or '-'}, "
        f"SQLite {m['sqlite']}; load average {m['load_average'][0]:.1f} at the start, "
        f"{m['load_average_at_end'][0]:.1f} at the end"
    )
    out.append("mix: " + ", ".join(f"{k} {v}" for k, v in sorted(c["kinds"].items())))
    out.append("")
    out.append(
        f"{'system':<34}{'msgs/s':>9}{'MB/s':>9}{'wall s':>9}{'CPU ms/msg':>11}{'peak PSS':>10}{'procs':>7}"
    )
    for name, data in results["systems"].items():
        label = name if name != "peer" else f"{data['system']} get_email"
        if "skipped" in data:
            out.append(f"{label:<34}skipped: {data['skipped']}")
            continue
        out.append(
            f"{label:<34}{data['msgs_per_s']:>9,.1f}{data['mb_per_s']:>9.1f}{data['seconds']:>9.2f}"
            f"{1000 * data.get('cpu_seconds', 0) / max(1, data['messages']):>11.1f}"
            f"{data['peak_pss_mb'] or 0:>7.0f} MB{data.get('processes', 1):>7}"
        )
    out.append("")
    for name, value in results["ratios"].items():
        shown = f"{value:.1f}x" if "peer" in name else f"{100 * value:.2f}%"
        out.append(f"ratio {name:<40}{shown:>10}")
    for name, data in results["systems"].items():
        if name.startswith("intake") and "skipped" not in data:
            stages = ", ".join(
                f"{v:.0f} {k}" if k == "examined in the poller" else f"{k} {v:.2f} s"
                for k, v in data["stages"].items()
            )
            stages = stages or "not logged"
            out.append(
                f"{name}: recorded {data['recorded']} {data['statuses']}; replies {data['replies']}; "
                f"sent to SMTP {data['smtp_received']}; unfiled {data['unfiled']}; stages: {stages}"
            )
        elif name == "peer":
            out.append(
                f"peer: {data['tickets']} tickets, {data['left_in_inbox']} messages left in the INBOX, "
                f"sent to SMTP {data['smtp_received']}"
            )
    large = results.get("large_message")
    if large:
        out.append(
            f"large message ({large['attachment_mb']} MB .docx, {large['message_bytes'] / MB:.1f} MB "
            f"on the wire): poll peak PSS {large['poll']['peak_pss_mb'] or 0:.0f} MB in "
            f"{large['poll']['seconds']:.1f} s; parse + judge alone peak PSS "
            f"{large['judge']['peak_pss_mb'] or 0:.0f} MB"
        )
    profile = results.get("profile")
    if profile:
        out.append("")
        out.append(f"profile ({profile['messages']} messages, SQLite, in-process, cProfile; tottime):")
        for name, item in list(profile["by_component"].items())[:8]:
            out.append(f"  {name:<28}{item['seconds']:>8.2f} s {100 * item['share']:>5.1f}%")
        out.append("  top functions:")
        for row in profile["top_tottime"][:10]:
            out.append(f"  {row['tottime']:>8.2f} s {row['calls']:>9,}  {row['function']}  ({row['where']})")
    out.append("")
    out.append("goals:")
    for goal in results["goals"]:
        out.append(f"  [{'met' if goal['met'] else 'NOT MET':^7}] {goal['goal']}: {goal['value']}")
    out.append(f"(whole run {results['total_seconds']:.0f} s)")
    return "\n".join(out)


# ------------------------------------------------------------------------ main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=None, help="default 1000 (100 with --smoke)")
    parser.add_argument(
        "--backend",
        choices=("sqlite", "postgresql", "both"),
        default=None,
        help="default both (sqlite with --smoke)",
    )
    parser.add_argument(
        "--peer",
        choices=("django-helpdesk", "none"),
        default=None,
        help="the peer timed on the same mailbox (default django-helpdesk; none with --smoke)",
    )
    parser.add_argument("--workers", type=int, default=None, help="INTAKE_WORKERS for intake's runs")
    parser.add_argument(
        "--batch-messages",
        type=int,
        default=None,
        help="[imap] batch_messages for intake's runs (default 100)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="where to write the results (default bench/results/latest.json, or smoke.json with --smoke)",
    )
    parser.add_argument("--attachment-kb", type=int, default=100)
    parser.add_argument(
        "--large-mb", type=int, default=25, help="size of the .docx in the single-large-message test"
    )
    parser.add_argument("--fetch-batch", type=int, default=100, help="UIDs per FETCH in the raw fetch")
    parser.add_argument(
        "--fetch-rounds",
        type=int,
        default=None,
        help="raw fetch rounds, the median is kept (default 3; 1 with --smoke)",
    )
    parser.add_argument(
        "--profile-messages",
        type=int,
        default=None,
        help="messages in the cProfile run, 0 for none (default 300; 40 with --smoke)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--smoke", action="store_true", help="100 messages, SQLite, a short profile: for CI")
    parser.add_argument("--keep", action="store_true", help="keep the work directories")
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.phase:
        result = PHASES[args.phase](json.loads(args.spec.read_text()))
        print("RESULT " + json.dumps(result), flush=True)
        return 0

    def default(value: int | str | None, full: int | str, smoke: int | str) -> Any:
        return value if value is not None else (smoke if args.smoke else full)

    backend = default(args.backend, "both", "sqlite")
    peer_name = default(args.peer, "django-helpdesk", "none")
    json_path = args.json or REPO / "bench" / "results" / ("smoke.json" if args.smoke else "latest.json")
    options = Options(
        messages=default(args.messages, 1000, 100),
        backends=("sqlite", "postgresql") if backend == "both" else (backend,),
        peer=None if peer_name == "none" else peer_name,
        workers=args.workers,
        batch_messages=args.batch_messages,
        json_path=json_path,
        attachment_kb=args.attachment_kb,
        large_mb=args.large_mb,
        fetch_batch=args.fetch_batch,
        fetch_rounds=default(args.fetch_rounds, 3, 1),
        profile_messages=default(args.profile_messages, 300, 40),
        seed=args.seed,
        smoke=args.smoke,
        keep=args.keep,
    )
    if options.messages < 1:
        print("bench: --messages must be at least 1", file=sys.stderr)
        return 2
    results = run(options)
    print(format_table(results))
    options.json_path.parent.mkdir(parents=True, exist_ok=True)
    options.json_path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"results written to {options.json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
