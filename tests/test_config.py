"""Configuration: the TOML file, the environment, secrets, and one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from intake.config import ENVIRONMENT, ConfigError, load_deployment, load_settings, shipped_config_dir
from tests.support.intake_env import REPO, write_config

FULL_ENV = {
    "INTAKE_IMAP_HOST": "imap.example.org",
    "INTAKE_IMAP_USER": "tsbjcamv@itu.int",
    "INTAKE_IMAP_PASSWORD": "hunter2-imap",
    "INTAKE_SMTP_HOST": "smtp.example.org",
}


def run_intake(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
    return subprocess.run(
        [sys.executable, "-m", "intake", *args],
        capture_output=True,
        text=True,
        env={**base, **env},
        cwd=cwd,
        timeout=60,
    )


def test_no_config_file_runs_the_shipped_event_from_the_environment() -> None:
    settings = load_settings(env=FULL_ENV)
    assert settings.config_path == shipped_config_dir() / "jca-mv-2.toml"
    assert settings.event.address == "tsbjcamv@itu.int"
    assert settings.event.meeting_date.isoformat() == "2026-05-13"
    assert settings.event.preregistration_deadline.isoformat() == "2026-05-04"  # type: ignore[union-attr]
    # 23:59:59 Geneva time in summer is 21:59:59 UTC.
    assert settings.event.deadline.astimezone(UTC) == datetime(2026, 4, 30, 21, 59, 59, tzinfo=UTC)
    assert settings.imap.host == "imap.example.org"
    # Defaults: TLS on with verification, SQLite and data under var/.
    assert settings.imap.tls == "ssl" and settings.imap.port == 993
    assert settings.smtp.tls == "starttls" and settings.smtp.port == 587
    assert settings.database_url == "sqlite:///var/intake.db"
    assert settings.data_dir == Path("var")
    assert settings.max_backoff == 300  # docs/operators.md, "After an outage"


def test_every_documented_variable_overrides_the_file(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked here")
    env = {
        **FULL_ENV,
        "INTAKE_DATABASE_URL": "postgresql://intake@db/intake",
        "INTAKE_DATA_DIR": "/srv/intake",
        "INTAKE_IMAP_PORT": "1993",
        "INTAKE_IMAP_TLS": "starttls",
        "INTAKE_IMAP_CA_FILE": str(ca),
        "INTAKE_IMAP_FOLDER": "Submissions",
        "INTAKE_SMTP_PORT": "2525",
        "INTAKE_SMTP_USER": "sender",
        "INTAKE_SMTP_PASSWORD": "hunter2-smtp",
        "INTAKE_SMTP_TLS": "ssl",
        "INTAKE_SMTP_CA_FILE": str(ca),
        "INTAKE_DEADLINE": "2026-09-01T12:00:00",
        "INTAKE_TIMEZONE": "Asia/Tokyo",
        "INTAKE_MAX_BACKOFF": "120",
    }
    s = load_settings(env=env)
    assert s.max_backoff == 120
    assert s.database_url == "postgresql://intake@db/intake"
    assert s.data_dir == Path("/srv/intake")
    assert (s.imap.port, s.imap.tls, s.imap.ca_file, s.imap.folder) == (1993, "starttls", ca, "Submissions")
    assert (s.smtp.port, s.smtp.user, s.smtp.tls, s.smtp.ca_file) == (2525, "sender", "ssl", ca)
    assert s.smtp.password is not None and s.smtp.password.reveal() == "hunter2-smtp"
    assert s.event.deadline.astimezone(UTC) == datetime(2026, 9, 1, 3, 0, tzinfo=UTC)
    assert s.event.timezone.key == "Asia/Tokyo"
    # The variables the issue names all exist.
    for name in (
        "INTAKE_DATABASE_URL",
        "INTAKE_DATA_DIR",
        "INTAKE_IMAP_HOST",
        "INTAKE_IMAP_PORT",
        "INTAKE_IMAP_USER",
        "INTAKE_IMAP_PASSWORD",
        "INTAKE_IMAP_TLS",
        "INTAKE_IMAP_CA_FILE",
        "INTAKE_IMAP_FOLDER",
        "INTAKE_SMTP_HOST",
        "INTAKE_SMTP_PORT",
        "INTAKE_SMTP_USER",
        "INTAKE_SMTP_PASSWORD",
        "INTAKE_SMTP_TLS",
        "INTAKE_SMTP_CA_FILE",
        "INTAKE_DEADLINE",
        "INTAKE_TIMEZONE",
    ):
        assert name in ENVIRONMENT


def test_password_from_a_file_and_never_shown(tmp_path: Path) -> None:
    secret = tmp_path / "imap-password"
    secret.write_text("correct horse battery\n")
    env = {**FULL_ENV, "INTAKE_IMAP_PASSWORD": "", "INTAKE_IMAP_PASSWORD_FILE": str(secret)}
    s = load_settings(env=env)
    assert s.imap.password.reveal() == "correct horse battery"
    assert "correct horse" not in repr(s)
    assert "correct horse" not in str(s.imap)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"INTAKE_IMAP_HOST": ""}, "imap.host (INTAKE_IMAP_HOST): missing"),
        ({"INTAKE_IMAP_PORT": "99999"}, "imap.port (INTAKE_IMAP_PORT): must be between 1 and 65535"),
        ({"INTAKE_IMAP_PORT": "imap"}, "imap.port (INTAKE_IMAP_PORT): must be a whole number"),
        ({"INTAKE_IMAP_TLS": "tls1.3"}, "imap.tls (INTAKE_IMAP_TLS): unknown value 'tls1.3'"),
        ({"INTAKE_SMTP_TLS": "maybe"}, "smtp.tls (INTAKE_SMTP_TLS): unknown value 'maybe'"),
        ({"INTAKE_TIMEZONE": "Mars/Olympus"}, "event.timezone (INTAKE_TIMEZONE): unknown IANA time zone"),
        ({"INTAKE_DEADLINE": "30/04/2026"}, "event.deadline (INTAKE_DEADLINE): must be a local date-time"),
        (
            {"INTAKE_MAX_BACKOFF": "0"},
            "service.max_backoff (INTAKE_MAX_BACKOFF): must be between 1 and 86400",
        ),
        (
            {"INTAKE_IMAP_PASSWORD": "", "INTAKE_IMAP_PASSWORD_FILE": "/nonexistent/pw"},
            "imap.password (INTAKE_IMAP_PASSWORD_FILE): password file /nonexistent/pw does not exist",
        ),
    ],
)
def test_a_wrong_setting_is_named(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env={**FULL_ENV, **env})
    assert str(caught.value).startswith(expected)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"INTAKE_IMAP_HOST": ""}, "imap.host (INTAKE_IMAP_HOST): missing"),
        ({"INTAKE_IMAP_PORT": "0"}, "imap.port (INTAKE_IMAP_PORT): must be between 1 and 65535, got 0"),
        ({"INTAKE_IMAP_TLS": "sslv2"}, "imap.tls (INTAKE_IMAP_TLS): unknown value 'sslv2'"),
        (
            {"INTAKE_IMAP_PASSWORD": "", "INTAKE_IMAP_PASSWORD_FILE": "UNREADABLE"},
            "imap.password (INTAKE_IMAP_PASSWORD_FILE): password file",
        ),
    ],
)
def test_the_cli_stops_with_one_line_and_exit_code_2(
    tmp_path: Path, change: dict[str, str], expected: str
) -> None:
    env = {**FULL_ENV, **change}
    if env.get("INTAKE_IMAP_PASSWORD_FILE") == "UNREADABLE":
        secret = tmp_path / "pw"
        secret.write_text("s3cret-value")
        secret.chmod(0)
        env["INTAKE_IMAP_PASSWORD_FILE"] = str(secret)
        if os.geteuid() == 0:
            # root reads any file: make it unreadable by making it a directory instead.
            secret.unlink()
            secret.mkdir()
    for command in (["poll", "--once"], ["check-config"]):
        result = run_intake(command, env, tmp_path)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert expected in lines[0]
        assert "Traceback" not in result.stderr
        assert "s3cret-value" not in result.stderr + result.stdout
        assert result.stdout == ""
    # `log` reads the database only: the IMAP settings are none of its business (issue 13).
    result = run_intake(["log"], env, tmp_path)
    assert "configuration error" not in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_a_config_file_that_is_not_toml(tmp_path: Path) -> None:
    bad = tmp_path / "intake.toml"
    bad.write_text("[imap\nhost = 'x'\n")
    result = run_intake(["--config", str(bad), "poll", "--once"], {}, tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "is not valid TOML" in result.stderr


def test_config_file_via_environment(tmp_path: Path) -> None:
    env_obj = write_config(tmp_path, "127.0.0.1", 1143, "u", "p", f"sqlite:///{tmp_path}/x.db")
    s = load_settings(env={"INTAKE_CONFIG": str(env_obj.config_path)})
    assert s.imap.port == 1143 and s.imap.tls == "none"
    # The environment still wins over the file.
    s = load_settings(env={"INTAKE_CONFIG": str(env_obj.config_path), "INTAKE_IMAP_PORT": "2143"})
    assert s.imap.port == 2143


def test_shipped_configs_load() -> None:
    for name in ("jca-mv-2.toml", "demo.toml"):
        s = load_settings(shipped_config_dir() / name, env=FULL_ENV)
        assert s.event.id == "jca-mv-2"
    assert (REPO / "config" / "jca-mv-2.toml").is_file()


@pytest.mark.parametrize(
    ("table", "line", "key"),
    [
        ("checks", 'highlight = "yes"', "event.checks.highlight"),
        ("checks", "max_part_mb = 0", "event.checks.max_part_mb"),
        ("screening", 'disabled_rules = ["own-address"]', "event.screening.disabled_rules"),
        ("screening", 'own_addresses = ["not an address"]', "event.screening.own_addresses"),
        ("replies", "daily_cap = 0", "event.replies.daily_cap"),
        ("replies", 'templates_dir = "no/such/dir"', "event.replies.templates_dir"),
    ],
)
def test_a_wrong_value_in_an_event_table_stops_each_command_at_start(
    tmp_path: Path, table: str, line: str, key: str
) -> None:
    """Parsed once at load: nothing is read, migrated or contacted before the one line."""
    config = write_config(
        tmp_path, "127.0.0.1", 1, "u", "p", f"sqlite:///{tmp_path}/x.db", extra=f"[event.{table}]\n{line}\n"
    ).config_path
    with pytest.raises(ConfigError) as caught:
        load_settings(config, env={})
    assert caught.value.setting == key
    for command in (["check-config"], ["poll", "--once"], ["run"]):
        result = run_intake(["--config", str(config), *command], {}, tmp_path)
        lines = result.stderr.strip().splitlines()
        assert (result.returncode, len(lines)) == (2, 1), f"intake {command[0]}: {result.stderr}"
        assert lines[0].startswith(f"intake: configuration error: {key}: "), lines[0]
        assert result.stdout == ""
    assert not (tmp_path / "x.db").exists()


def test_each_event_of_a_deployment_has_its_tables_parsed_at_load(tmp_path: Path) -> None:
    config = tmp_path / "events.toml"
    env = write_config(tmp_path, "127.0.0.1", 1, "u", "p", f"sqlite:///{tmp_path}/x.db")
    text = env.config_path.read_text(encoding="utf-8")
    event = text[text.index("[event]") :].replace("[event]", "[[events]]")
    second = event.replace('id = "jca-mv-2"', 'id = "second"') + "[events.replies]\ndaily_cap = 2\n"
    config.write_text(text[: text.index("[event]")] + event + second, encoding="utf-8")
    first, other = load_deployment(config, env={})
    assert first.event.replies.daily_cap == 10 and other.event.replies.daily_cap == 2
    assert other.event.checks == first.event.checks and other.event.screening == first.event.screening
    config.write_text(config.read_text(encoding="utf-8").replace("daily_cap = 2", "daily_cap = -1"))
    result = run_intake(["--config", str(config), "poll", "--once"], {}, tmp_path)
    assert result.returncode == 2 and "event.replies.daily_cap" in result.stderr, result.stderr
