"""The real-world corpus: messages from the public test suites of established mail software.

Nothing is vendored. At test time the packages below are fetched with the
ordinary clients of the registries this project uses (`pip download` of a
source distribution, `apt-get download` of a Debian package), into a cache
outside git, and the test messages are taken out of them. Origins and
licences: tests/mail/README.md.

    python -m tests.mail.realworld [DIR]    # fetch (or reuse) and list the corpus

The cache is `$INTAKE_CORPUS_CACHE`, else `~/.cache/intake/realworld`.

Each message carries the label its suite gives it, where the suite gives one:
flufl.bounce (GNU Mailman's bounce detector) lists in tests/test_detectors.py,
for each of its messages, the bounced addresses it must find: a message with
at least one is a bounce (or a delivery warning) by the suite's own word.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(os.environ.get("INTAKE_CORPUS_CACHE") or Path.home() / ".cache" / "intake" / "realworld")


@dataclass(frozen=True)
class Source:
    name: str  # the directory in the cache, and the prefix of each message's name
    registry: str  # "pypi" (a source distribution) or "debian" (a binary package)
    package: str  # name==version on PyPI; the package name on Debian
    members: tuple[str, ...]  # glob patterns of the messages inside the archive
    label: str | None = None  # what the suite says every message is (bounce, auto, list)
    licence: str = ""


SOURCES: tuple[Source, ...] = (
    Source(
        "flufl-bounce",
        "pypi",
        "flufl.bounce==6.0.0",
        ("*/tests/data/*.txt", "*/tests/test_detectors.py"),
        "bounce",
        "Apache-2.0",
    ),
    Source("mail-parser", "pypi", "mail-parser==4.8.0", ("*/tests/mails/*",), None, "Apache-2.0"),
    Source(
        "django-mailbox",
        "pypi",
        "django-mailbox==4.10.1",
        ("*/django_mailbox/tests/messages/*.eml",),
        None,
        "MIT",
    ),
    Source(
        "hyperkitty", "pypi", "hyperkitty==1.3.12", ("*/hyperkitty/tests/testdata/*.txt",), None, "GPL-3.0"
    ),
    Source("talon", "pypi", "talon==1.4.4", ("*/tests/fixtures/standard_replies/*.eml",), None, "Apache-2.0"),
    Source("mailman", "pypi", "mailman==3.3.10", ("*/tests/data/*.eml", "*/tests/*.eml"), None, "GPL-3.0"),
    Source(
        "enmime",
        "debian",
        "golang-github-jhillyerd-enmime-dev",
        ("*/enmime/testdata/mail/*", "*/enmime/testdata/low-quality/*", "*/enmime/testdata/parts/*"),
        None,
        "MIT",
    ),
    Source(
        "cpython",
        "debian",
        "libpython3.11-testsuite",
        ("*/test/test_email/data/msg_*.txt",),
        None,
        "PSF-2.0",
    ),
)


@dataclass(frozen=True)
class CorpusMessage:
    name: str  # source/file
    source: str
    label: str | None
    raw: bytes


class FetchError(Exception):
    """A package could not be fetched from its registry."""


def _run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise FetchError(f"{' '.join(command)} failed: {' / '.join(tail)}")


def _download(source: Source, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    if source.registry == "pypi":
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
        _run([*command, "--no-binary", ":all:", "--dest", str(into), source.package], into)
        found = [p for p in into.iterdir() if p.name.endswith((".tar.gz", ".zip"))]
    else:
        try:
            _run(["apt-get", "download", source.package], into)
        except FetchError:
            _run(["apt-get", "update", "-qq"], into)  # a fresh machine has no package lists
            _run(["apt-get", "download", source.package], into)
        found = [p for p in into.iterdir() if p.suffix == ".deb"]
    if not found:
        raise FetchError(f"{source.package}: nothing was downloaded")
    return found[0]


def _members(source: Source, archive: Path, work: Path) -> dict[str, bytes]:
    if archive.suffix == ".deb":
        tree = work / "tree"
        _run(["dpkg-deb", "-x", str(archive), str(tree)], work)
        paths = [p for p in tree.rglob("*") if p.is_file()]
        files = {str(p.relative_to(tree)): p.read_bytes() for p in paths if _wanted(source, p, tree)}
        shutil.rmtree(tree)
        return files
    found: dict[str, bytes] = {}
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if member.isfile() and any(fnmatch.fnmatch(member.name, g) for g in source.members):
                if member.name.endswith((".cfg", ".txt.gz")):
                    continue
                handle = tar.extractfile(member)
                if handle is not None:
                    found[member.name] = handle.read()
    return found


def _wanted(source: Source, path: Path, tree: Path) -> bool:
    name = "/" + str(path.relative_to(tree))
    return any(fnmatch.fnmatch(name, g) for g in source.members) and not name.endswith((".go", ".golden"))


def fetch(source: Source, cache: Path = CACHE) -> Path:
    """The directory holding this source's messages, fetched once into the cache."""
    done = cache / source.name / ".complete"
    target = cache / source.name / "messages"
    if done.exists():
        return target
    work = cache / source.name / "download"
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(target, ignore_errors=True)
    archive = _download(source, work)
    files = _members(source, archive, work)
    if not files:
        raise FetchError(f"{source.package}: no file matched {source.members}")
    target.mkdir(parents=True)
    for member, data in sorted(files.items()):
        (target / Path(member).name).write_bytes(data)
    (cache / source.name / "origin.txt").write_text(f"{source.registry} {source.package} {archive.name}\n")
    shutil.rmtree(work, ignore_errors=True)
    done.write_text("")
    return target


# flufl.bounce's table rows: ('detector', 'file.txt', [b'addr', ...], warning)
_DETECTOR_ROW = re.compile(r"\(\s*'[a-z0-9]+',\s*'([^']+)',\s*\[([^\]]*)\]", re.DOTALL)


def _labelled(source: Source, directory: Path) -> dict[str, str | None]:
    """Which of the source's files carry its label, by the suite's own expectations."""
    names = [p.name for p in sorted(directory.iterdir()) if not p.name.endswith(".py")]
    table = directory / "test_detectors.py"
    if source.label is None or not table.exists():
        return dict.fromkeys(names, source.label)
    found = {m.group(1): bool(m.group(2).strip()) for m in _DETECTOR_ROW.finditer(table.read_text())}
    return {name: source.label if found.get(name) else None for name in names}


def corpus(cache: Path = CACHE) -> list[CorpusMessage]:
    """Every message of every source, fetching what the cache lacks."""
    messages: list[CorpusMessage] = []
    for source in SOURCES:
        directory = fetch(source, cache)
        for name, label in _labelled(source, directory).items():
            raw = (directory / name).read_bytes()
            if raw.strip():
                messages.append(CorpusMessage(f"{source.name}/{name}", source.name, label, raw))
    return messages


if __name__ == "__main__":
    found = corpus(Path(sys.argv[1]) if len(sys.argv) > 1 else CACHE)
    for message in found:
        print(f"{message.name}\t{message.label or '-'}\t{len(message.raw)}")
    print(f"{len(found)} messages", file=sys.stderr)
