"""XOAUTH2 sign-in against real servers: Dovecot (oauth2 passdb) and aiosmtpd, both checking
every token with the fake identity provider that minted it.

What a real deployment does, end to end: `intake poll --once` gets a token from
Microsoft Entra (here: the fake, through msal) or from a token command, signs
in to IMAP with it, records the mail, and signs in to SMTP to send the reply.
"""

from __future__ import annotations

import asyncio
import shlex
import signal
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from intake import db
from intake.mailbox import Mailbox, MailboxError
from intake.oauth import provider_for
from intake.pipeline import deliver, poll_once
from intake.replies.outbox import _connect, _disconnect
from intake.samples import CONTRIBUTORS, make_message
from intake.store import BlobStore
from tests.oauth.idp import CLIENT_ID, CLIENT_SECRET, TENANT, FakeIdentityProvider
from tests.oauth.servers import XOAuth2Smtp
from tests.support.dovecot import Dovecot
from tests.support.intake_env import IntakeEnv, write_config
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.dovecot,
    # aiosmtpd warns, per connection, that AUTH without TLS is unsafe: loopback only here.
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
]


def entra_config(idp: FakeIdentityProvider) -> str:
    return f"""auth = "xoauth2"
oauth_tenant = "{TENANT}"
oauth_client_id = "{CLIENT_ID}"
oauth_client_secret = "{CLIENT_SECRET}"
oauth_authority = "{idp.authority}"
"""


def token_command(tmp_path: Path, idp: FakeIdentityProvider) -> str:
    """A command that prints {"access_token", "expires_in"}, as a Google OAuth helper would."""
    script = tmp_path / "print_token.py"
    script.write_text(
        "import sys, urllib.request\n"
        "print(urllib.request.urlopen(sys.argv[1], data=b'', timeout=5).read().decode())\n"
    )
    command = " ".join(shlex.quote(part) for part in (sys.executable, str(script), idp.mint_url))
    return f"auth = \"xoauth2\"\ntoken_command = '{command}'\n"


def configure(
    tmp_path: Path, dovecot: Dovecot, smtp: XOAuth2Smtp, database_url: str, imap_extra: str
) -> IntakeEnv:
    env = write_config(
        tmp_path,
        dovecot.host,
        dovecot.port,
        dovecot.user,
        "not-the-password",  # only a token can sign in
        database_url,
        smtp_port=smtp.port,
        imap_extra=imap_extra,
    )
    # SMTP signs in with XOAUTH2 too, as the IMAP user, reusing the IMAP token source.
    text = env.config_path.read_text()
    env.config_path.write_text(text.replace("[smtp]\n", '[smtp]\nauth = "xoauth2"\n', 1))
    return env


def submit(dovecot: Dovecot, env: IntakeEnv, who: int = 0) -> None:
    event = env.settings().event
    raw = make_message(
        CONTRIBUTORS[who],
        event.address,
        "A PDF only",
        "Attached.",
        [("x.pdf", "application/pdf", b"%PDF-1.4\n%%EOF\n")],
    )
    dovecot.append_many("INBOX", [(raw, event.deadline - timedelta(days=1))])


def assert_no_secret_shown(idp: FakeIdentityProvider, *outputs: str) -> None:
    for secret in [i.token for i in idp.issued] + [CLIENT_SECRET]:
        for output in outputs:
            assert secret not in output


def test_microsoft_365_sign_in_for_imap_and_smtp_through_the_cli(
    idp: FakeIdentityProvider,
    oauth_dovecot: Dovecot,
    oauth_smtp: XOAuth2Smtp,
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    env = configure(tmp_path, oauth_dovecot, oauth_smtp, sqlite_url, entra_config(idp))
    submit(oauth_dovecot, env)

    result = env.run("poll", "--once")
    assert result.returncode == 0, result.stderr
    [entry] = env.log_json()
    assert entry["status"] == "rejected"
    assert [m.rcpt_tos for m in oauth_smtp.messages] == [(CONTRIBUTORS[0].address,)]
    assert oauth_smtp.logins == [oauth_dovecot.user]
    assert "method=XOAUTH2" in oauth_dovecot.log_path.read_text()
    # One client-credentials request served IMAP (poll and Sent copy) and SMTP alike.
    assert idp.token_requests == 1 and idp.refused_introspections == 0
    assert_no_secret_shown(idp, result.stdout, result.stderr, oauth_dovecot.log_tail(100))

    check = env.run("check-config")
    assert check.returncode == 0, check.stdout
    assert f"signed in as {oauth_dovecot.user}" in check.stdout


def test_a_revoked_token_is_replaced_once_and_the_poll_succeeds(
    idp: FakeIdentityProvider,
    oauth_dovecot: Dovecot,
    oauth_smtp: XOAuth2Smtp,
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    env = configure(tmp_path, oauth_dovecot, oauth_smtp, sqlite_url, token_command(tmp_path, idp))
    submit(oauth_dovecot, env)
    idp.revoke_next(1)  # the first token the command prints is already revoked

    result = env.run("poll", "--once")
    assert result.returncode == 0, result.stderr
    assert "refused the access token; signing in again with a new one" in result.stderr
    assert len(env.log_json()) == 1 and len(oauth_smtp.messages) == 1
    assert len(idp.issued) == 2  # one refresh, no more
    assert idp.refused_introspections == 1
    assert_no_secret_shown(idp, result.stdout, result.stderr)


def test_an_expired_token_is_refreshed_before_the_poll_needs_it(
    idp: FakeIdentityProvider,
    oauth_dovecot: Dovecot,
    oauth_smtp: XOAuth2Smtp,
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    """Two polls in one process, the token expiring between them: both succeed, and
    no expired token ever reaches a server (none is refused)."""
    idp.lifetime = 2
    env = configure(tmp_path, oauth_dovecot, oauth_smtp, sqlite_url, entra_config(idp))
    settings = env.settings()
    engine = db.make_engine(settings.database_url)
    sessions = db.make_sessionmaker(engine)
    store = BlobStore(settings.data_dir)
    try:
        submit(oauth_dovecot, env, who=0)
        first = poll_once(settings, sessions, store)
        deliver(settings, sessions)
        requests_after_first = idp.token_requests

        time.sleep(2.5)  # the token of the first poll has expired
        assert not any(idp.check(i.token) for i in idp.issued[:requests_after_first])
        idp.introspections.clear()
        submit(oauth_dovecot, env, who=1)
        second = poll_once(settings, sessions, store)
        deliver(settings, sessions)
    finally:
        engine.dispose()

    assert sum(first.recorded.values()) == 1 and sum(second.recorded.values()) == 1
    assert len(oauth_smtp.messages) == 2
    assert idp.token_requests > requests_after_first  # refreshed for the second poll...
    assert idp.refused_introspections == 0  # ...before it expired, not after a refusal
    assert provider_for(settings.imap.oauth).fetches == idp.token_requests  # type: ignore[arg-type]


def test_a_token_revoked_while_cached_is_replaced_for_imap_and_smtp(
    idp: FakeIdentityProvider,
    oauth_dovecot: Dovecot,
    oauth_smtp: XOAuth2Smtp,
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    env = configure(tmp_path, oauth_dovecot, oauth_smtp, sqlite_url, entra_config(idp))
    settings = env.settings()
    with Mailbox(settings.imap) as mailbox:
        mailbox.select("INBOX")
    assert idp.token_requests == 1

    idp.revoke_all()  # still within its lifetime, so the cache would hand it out again
    with Mailbox(settings.imap) as mailbox:
        mailbox.select("INBOX")
    assert idp.token_requests == 2 and idp.refused_introspections == 1

    idp.revoke_all()

    async def sign_in_to_smtp() -> None:
        await _disconnect(await _connect(settings.smtp))

    asyncio.run(sign_in_to_smtp())
    assert idp.token_requests == 3
    assert oauth_smtp.refusals == 1 and oauth_smtp.logins == [oauth_dovecot.user]


def test_a_token_refused_twice_fails_the_sign_in_after_one_retry(
    idp: FakeIdentityProvider,
    oauth_dovecot: Dovecot,
    oauth_smtp: XOAuth2Smtp,
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    env = configure(tmp_path, oauth_dovecot, oauth_smtp, sqlite_url, entra_config(idp))
    idp.revoke_next(10)  # e.g. the app lost its IMAP.AccessAsApp permission
    with pytest.raises(MailboxError, match="refused the sign-in"), Mailbox(env.settings().imap):
        pass
    assert idp.token_requests == 2 and idp.refused_introspections == 2


def test_intake_run_keeps_polling_across_token_expiry(
    idp: FakeIdentityProvider,
    oauth_dovecot: Dovecot,
    oauth_smtp: XOAuth2Smtp,
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    """The real service, polling every second with tokens that live two: no poll fails."""
    idp.lifetime = 2
    env = configure(tmp_path, oauth_dovecot, oauth_smtp, sqlite_url, entra_config(idp))
    text = env.config_path.read_text().replace("[service]\n", "[service]\npoll_interval = 1\n", 1)
    env.config_path.write_text(text)
    submit(oauth_dovecot, env, who=0)
    process = env.popen("run")
    try:
        wait_until(lambda: len(env.log_json()) == 1)
        time.sleep(3)  # the first token has expired; polls went on meanwhile
        submit(oauth_dovecot, env, who=1)
        wait_until(lambda: len(env.log_json()) == 2)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "poll failed" not in stderr and "Traceback" not in stderr
    assert idp.token_requests >= 2  # refreshed while running...
    assert idp.refused_introspections == 0  # ...always before the token expired
    assert_no_secret_shown(idp, stderr)
