"""The pre-check page's settings: `[event] max_attachment_mb` and `precheck_url`, each wrong
value named in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from intake.config import ConfigError, load_settings
from tests.support.intake_env import write_config


def _settings(tmp_path: Path, extra: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    made = write_config(tmp_path, "imap.invalid", 993, "u@example.org", "pw", "sqlite:///x.db", extra=extra)
    return load_settings(made.config_path, env=env or {})


def test_defaults(tmp_path: Path) -> None:
    event = _settings(tmp_path, "").event
    assert event.max_attachment_mb == 25 and event.precheck_url == ""


def test_values_from_the_file_and_the_environment(tmp_path: Path) -> None:
    event = _settings(tmp_path, 'max_attachment_mb = 10\nprecheck_url = "https://check.example.org/"').event
    assert event.max_attachment_mb == 10 and event.precheck_url == "https://check.example.org/"
    env = {"INTAKE_PRECHECK_URL": "https://other.example.org/jca"}
    assert _settings(tmp_path, "", env).event.precheck_url == "https://other.example.org/jca"


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ('precheck_url = "check.example.org"', "event.precheck_url"),
        ('precheck_url = "javascript:alert(1)"', "event.precheck_url"),
        ("max_attachment_mb = 0", "event.max_attachment_mb"),
    ],
)
def test_a_wrong_value_is_named(tmp_path: Path, extra: str, named: str) -> None:
    with pytest.raises(ConfigError) as raised:
        _settings(tmp_path, extra)
    assert str(raised.value).startswith(named)
