"""Fixtures for the judge's tests: the shipped event, variants of it, LibreOffice."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from intake.config import EventSettings, load_settings
from intake.config.checks import parse_checks
from tests.judge.corpus import ITU_TEMPLATE, ROOT

# The event comes from the shipped config; the mailbox settings it requires are not used.
MAILBOX_ENV = {
    "INTAKE_IMAP_HOST": "imap.invalid",
    "INTAKE_IMAP_USER": "tsbjcamv@itu.int",
    "INTAKE_IMAP_PASSWORD": "unused",
    "INTAKE_SMTP_HOST": "smtp.invalid",
}


def shipped_event() -> EventSettings:
    return load_settings(ROOT / "config" / "jca-mv-2.toml", env=MAILBOX_ENV).event


def with_checks(event: EventSettings, **checks: Any) -> EventSettings:
    """The shipped event with these keys of `[event.checks]` changed."""
    with (ROOT / "config" / "jca-mv-2.toml").open("rb") as fh:
        shipped = tomllib.load(fh)["event"].get("checks", {})
    return replace(event, checks=parse_checks({**shipped, **checks}))


@pytest.fixture(scope="session")
def event() -> EventSettings:
    """The JCA-MV 2nd meeting as shipped, with the shipped template."""
    return shipped_event()


@pytest.fixture(scope="session")
def itu_event(event: EventSettings) -> EventSettings:
    """The same event with ITU-T's own template dropped in as the event's template."""
    return replace(event, template=ITU_TEMPLATE)


@pytest.fixture(scope="session")
def soffice() -> str:
    """LibreOffice's headless soffice: skipped where missing, except under CI=true."""
    found = shutil.which("soffice") or shutil.which("libreoffice")
    if found is None:
        message = "LibreOffice (soffice) is not installed: apt-get install libreoffice-writer-nogui"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


Convert = Callable[[dict[str, bytes]], dict[str, bytes]]


@pytest.fixture(scope="session")
def libreoffice(soffice: str, tmp_path_factory: pytest.TempPathFactory) -> Convert:
    """Save documents through LibreOffice as .docx: one soffice run per batch, cached."""
    cache: dict[tuple[str, bytes], bytes] = {}
    profile = tmp_path_factory.mktemp("lo-profile")

    def convert(files: dict[str, bytes]) -> dict[str, bytes]:
        todo = {name: data for name, data in files.items() if (name, data) not in cache}
        if todo:
            work = tmp_path_factory.mktemp("lo")
            source, target = work / "in", work / "out"
            source.mkdir()
            for name, data in todo.items():
                (source / name).write_bytes(data)
            subprocess.run(
                [
                    soffice,
                    "--headless",
                    "--norestore",
                    "--nologo",
                    f"-env:UserInstallation={profile.as_uri()}",
                    "--convert-to",
                    "docx:MS Word 2007 XML",
                    "--outdir",
                    str(target),
                    *sorted(str(source / name) for name in todo),
                ],
                check=True,
                capture_output=True,
                timeout=240,
            )
            for name, data in todo.items():
                cache[(name, data)] = (target / Path(name).with_suffix(".docx").name).read_bytes()
        return {name: cache[(name, data)] for name, data in files.items()}

    return convert
