"""docs/configuration.md is generated from each setting's one definition (intake/config/keys.py),
is current, and names every key the loader reads: a key read but not defined fails here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from intake.config import keys, loader, replies, screening
from intake.config.doc import render
from tests.support.intake_env import EVENT, REPO

LOGIN = {
    "INTAKE_IMAP_HOST": "imap.example",
    "INTAKE_IMAP_USER": "intake",
    "INTAKE_IMAP_PASSWORD": "pw",
    "INTAKE_SMTP_HOST": "smtp.example",
    "INTAKE_SMTP_USER": "intake",
    "INTAKE_SMTP_PASSWORD": "pw",
}
# The token source of each server read in full: the keys read only with XOAUTH2.
XOAUTH2 = """
[imap]
host = "imap.example"
user = "intake"
auth = "xoauth2"
oauth_tenant = "t"
oauth_client_id = "c"
oauth_client_secret = "s"

[smtp]
host = "smtp.example"
auth = "xoauth2"
oauth_tenant = "t"
oauth_client_id = "c"
oauth_client_secret = "s"
"""


def keys_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> set[tuple[str, str]]:
    """Every (table, key) the loader looks up, over a password and an XOAUTH2 configuration."""
    seen: set[tuple[str, str]] = set()
    original = loader._Reader._get

    def recording(self: Any, table: str, key: str, default: Any = None) -> Any:
        seen.add((table, key))
        return original(self, table, key, default)

    monkeypatch.setattr(loader._Reader, "_get", recording)
    loader.load_settings(env=LOGIN)
    config = tmp_path / "oauth.toml"
    config.write_text(XOAUTH2 + EVENT, encoding="utf-8")
    loader.load_settings(config, env={})
    return seen


def test_the_reference_is_generated_and_current() -> None:
    written = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert written == render(), (
        "docs/configuration.md is stale: python -m intake.config.doc > docs/configuration.md"
    )


def test_every_key_the_loader_reads_is_defined_and_documented(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    defined = {(k.table, k.name) for k in keys.KEYS}
    from_file = {(k.table, f"{k.name}_file") for k in keys.KEYS if k.from_file}
    read = keys_read(monkeypatch, tmp_path)
    assert read - defined - from_file == set(), "keys read by the loader but defined nowhere"
    assert defined - read - {(k.table, k.name) for k in keys.KEYS if "." in k.table} == set(), (
        "keys defined (and documented) that the loader never reads"
    )
    doc = render()
    for key in keys.KEYS:
        assert f"| `{key.name}` |" in doc, key.setting
        if key.env:
            assert f"`{key.env}`" in doc, key.env


def test_every_key_of_the_replies_and_screening_tables_is_defined() -> None:
    for table, names in (("event.replies", replies._KEYS), ("event.screening", screening._KEYS)):
        defined = {k.name for k in keys.KEYS if k.table == table}
        assert set(names) == defined, table


def test_the_variables_the_loader_honours_are_the_definitions() -> None:
    assert {k.env: (k.table, k.name) for k in keys.KEYS if k.env} == loader.ENVIRONMENT
    for variable in (
        "INTAKE_IMAP_IDLE",
        "INTAKE_METRICS_PORT",
        "INTAKE_METRICS_HOST",
        "INTAKE_DATABASE_URL_FILE",
    ):
        assert f"`{variable}`" in render(), variable
