"""XOAUTH2 settings: the token sources, SMTP reusing the IMAP one, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from intake.config.loader import DEFAULT_OAUTH_AUTHORITY, DEFAULT_OAUTH_SCOPE, ConfigError, load_settings
from intake.replies.outbox import PasswordAuth, XOAuth2Auth, smtp_auth

BASE = {
    "INTAKE_IMAP_HOST": "outlook.office365.com",
    "INTAKE_IMAP_USER": "tsbjcamv@itu.int",
    "INTAKE_SMTP_HOST": "smtp.office365.com",
    "INTAKE_IMAP_AUTH": "xoauth2",
}
M365 = {
    **BASE,
    "INTAKE_IMAP_OAUTH_TENANT": "contoso.onmicrosoft.com",
    "INTAKE_IMAP_OAUTH_CLIENT_ID": "11111111-2222-3333-4444-555555555555",
    "INTAKE_IMAP_OAUTH_CLIENT_SECRET": "the-client-secret",
    "INTAKE_SMTP_AUTH": "xoauth2",
}


def test_microsoft_365_from_the_environment_for_imap_and_smtp() -> None:
    s = load_settings(env=M365)
    oauth = s.imap.oauth
    assert oauth is not None and s.imap.auth == "xoauth2"
    assert (oauth.tenant, oauth.authority, oauth.scope) == (
        "contoso.onmicrosoft.com",
        DEFAULT_OAUTH_AUTHORITY,
        DEFAULT_OAUTH_SCOPE,
    )
    assert oauth.client_secret is not None and oauth.client_secret.reveal() == "the-client-secret"
    # SMTP reuses the IMAP token source and user: one app registration, one token.
    assert s.smtp.auth == "xoauth2" and s.smtp.oauth is oauth and s.smtp.user == "tsbjcamv@itu.int"
    assert s.smtp.password is None
    auth = smtp_auth(s.smtp)
    assert isinstance(auth, XOAuth2Auth) and auth.user == "tsbjcamv@itu.int"
    assert "the-client-secret" not in repr(s) + str(s.imap) + repr(auth)


def test_the_client_secret_may_come_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "client-secret"
    secret.write_text("from-a-file\n")
    env = {**M365, "INTAKE_IMAP_OAUTH_CLIENT_SECRET": "", "INTAKE_IMAP_OAUTH_CLIENT_SECRET_FILE": str(secret)}
    oauth = load_settings(env=env).imap.oauth
    assert oauth is not None and oauth.client_secret is not None
    assert oauth.client_secret.reveal() == "from-a-file"


def test_the_toml_file_may_give_smtp_a_token_source_of_its_own(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("at-1")
    config = tmp_path / "intake.toml"
    config.write_text(
        """
[imap]
host = "imap.gmail.com"
user = "jcamv@example.org"
auth = "xoauth2"
token_command = "oauth2-helper --account jcamv@example.org"

[smtp]
host = "smtp.gmail.com"
auth = "xoauth2"
user = "sender@example.org"
token_file = "token"

[event]
id = "e"
name = "n"
group = "g"
acronym = "A"
address = "jcamv@example.org"
meeting_place = "Geneva"
meeting_date = 2026-05-13
deadline = "2026-04-30T23:59:59"
numbering_prefix = "A-"
"""
    )
    s = load_settings(config, env={})
    assert (
        s.imap.oauth is not None and s.imap.oauth.token_command == "oauth2-helper --account jcamv@example.org"
    )
    assert s.smtp.oauth is not None and s.smtp.oauth.token_file == tmp_path / "token"
    assert s.smtp.user == "sender@example.org"


def test_password_sign_in_is_unchanged() -> None:
    env = {**BASE, "INTAKE_IMAP_AUTH": "login", "INTAKE_IMAP_PASSWORD": "pw", "INTAKE_SMTP_USER": "u"}
    s = load_settings(env={**env, "INTAKE_SMTP_PASSWORD": "smtp-pw"})
    assert s.imap.oauth is None and s.smtp.auth == "login"
    assert isinstance(smtp_auth(s.smtp), PasswordAuth)
    with pytest.raises(ConfigError, match=r"^smtp.password \(INTAKE_SMTP_PASSWORD\): missing"):
        load_settings(env=env)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (BASE, "imap.auth (INTAKE_IMAP_AUTH): xoauth2 needs a token source: imap.token_command, token_file"),
        (
            {**M365, "INTAKE_IMAP_TOKEN_FILE": "/run/token"},
            "imap.oauth_client_id (INTAKE_IMAP_OAUTH_CLIENT_ID): give one token source, not both token_file "
            "and oauth_client_id",
        ),
        (
            {**M365, "INTAKE_IMAP_OAUTH_CLIENT_SECRET": ""},
            "imap.oauth_client_secret (INTAKE_IMAP_OAUTH_CLIENT_SECRET): missing: the client-credentials "
            "flow needs it",
        ),
        (
            {**M365, "INTAKE_IMAP_OAUTH_TENANT": ""},
            "imap.oauth_tenant (INTAKE_IMAP_OAUTH_TENANT): missing",
        ),
        (
            {**M365, "INTAKE_IMAP_OAUTH_AUTHORITY": "http://login.example.org/"},
            "imap.oauth_authority (INTAKE_IMAP_OAUTH_AUTHORITY): must be an https:// URL",
        ),
        (
            {
                **BASE,
                "INTAKE_IMAP_AUTH": "login",
                "INTAKE_IMAP_PASSWORD": "pw",
                "INTAKE_SMTP_AUTH": "xoauth2",
            },
            "smtp.auth (INTAKE_SMTP_AUTH): xoauth2 needs a token source here or in [imap]",
        ),
        ({**M365, "INTAKE_SMTP_AUTH": "oauth"}, "smtp.auth (INTAKE_SMTP_AUTH): unknown value 'oauth'"),
    ],
)
def test_a_wrong_oauth_setting_is_named_in_one_line(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env=env)
    assert str(caught.value).startswith(expected)
    assert "\n" not in str(caught.value) and "the-client-secret" not in str(caught.value)
