"""The IMAP connection cut right after a folder-changing command, Dovecot restarted.

`intake poll --once` reaches Dovecot through the proxy (tests/faults/proxy.py),
which lets one command of the chosen kind (CREATE, SUBSCRIBE, MOVE, COPY,
APPEND) reach the server and then cuts the connection: either once the server
has answered (the command was done; the client never hears so), or, in the
`killed` cases, by killing Dovecot with SIGKILL the moment the command has gone
(done, half done or not done: whatever the server left). Dovecot is restarted,
and the next poll must file everything, deliver and copy every reply, and
leave the folders subscribed, on SQLite and PostgreSQL.

COPY is reached by hiding MOVE from the server's capabilities, so that intake
files by COPY + \\Deleted + UID EXPUNGE. A COPY the server did whose answer was
cut is done again by the next poll: that message then has a second copy in its
Intake folder (nothing lost, nothing deleted; the ledger counts them).

The last test puts the mailbox in the state the original failure left
(issue 12): a folder name that LIST shows as \\Noselect, a directory without
its mailbox, which MOVE answers with [TRYCREATE].
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.faults.conftest import FULL, one_line_error, report
from tests.faults.corpus import OUTCOME, mail
from tests.faults.ledger import SENT_FOLDER, Ledger
from tests.faults.proxy import CuttingProxy
from tests.support.dovecot import MAIL_GID, MAIL_UID

pytestmark = pytest.mark.dovecot

PER_TEST = 8  # the corpus's first eight: accepted, rejected, late, ignored, quarantined mail
VERBS = ("CREATE", "SUBSCRIBE", "MOVE", "COPY", "APPEND")
# Short mode: every verb answered-then-cut, and the kill at CREATE (the failure of issue 12).
# Full mode: the kill at every verb too.
CASES = [(verb, "answered") for verb in VERBS] + [
    (verb, "killed") for verb in VERBS if FULL or verb == "CREATE"
]


@pytest.mark.parametrize(("verb", "how"), CASES)
def test_cut_after_a_folder_command(
    verb: str, how: str, proxied: tuple[Ledger, CuttingProxy], request: pytest.FixtureRequest
) -> None:
    ledger, proxy = proxied
    dovecot = ledger.dovecot
    ledger.append(mail(PER_TEST))
    if verb == "COPY":
        proxy.hide_capabilities = {b"MOVE"}
    proxy.cut_on = {verb}
    if how == "killed":
        proxy.on_command = dovecot.kill
    seen = len(proxy.connections)

    result = ledger.env.run("poll", "--once")

    cuts = proxy.cuts(seen)
    assert [c.cut_command for c in cuts] == [verb], (
        f"expected one connection cut after {verb}, saw {[c.cut_command for c in cuts]}:\n{result.stderr}"
    )
    assert cuts[0].cut, f"the cut after {verb} did not happen"
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    [error] = one_line_error(result.stderr)
    assert f"IMAP server 127.0.0.1:{proxy.port}" in error, error
    ledger.note_fault(smtp=False)

    # Dovecot restarted between the attempts (killed, so no clean goodbye either way).
    proxy.cut_on, proxy.on_command = set(), None
    dovecot.kill()
    dovecot.start()
    ledger.check(complete=False, copied_twice=verb == "COPY")

    ledger.env.run("poll", "--once", check=True)
    ledger.check(copied_twice=verb == "COPY")
    with dovecot.client() as client:
        subscribed = {name for _flags, _delimiter, name in client.list_sub_folders()}
    ours = {f"Intake/{OUTCOME[m.kind][0].capitalize()}" for m in ledger.mail} | {SENT_FOLDER}
    assert ours <= subscribed, f"folders not subscribed: {sorted(ours - subscribed)}"
    report(request.node.name, ledger.tally.line())


def test_a_folder_left_half_created(
    proxied: tuple[Ledger, CuttingProxy], request: pytest.FixtureRequest
) -> None:
    """What a kill -9 in the middle of CREATE leaves with Dovecot's Maildir++/fs layout:
    the folder's directory without the mailbox inside. LIST shows the name (\\Noselect),
    MOVE answers [TRYCREATE]. The poll must create it and file into it."""
    ledger, _proxy = proxied
    ledger.append(mail(PER_TEST))
    half = ledger.dovecot.maildir / "Intake" / "Accepted"
    half.mkdir(parents=True)
    if os.geteuid() == 0:
        for path in (half.parent, half):
            os.chown(path, MAIL_UID, MAIL_GID)
    with ledger.dovecot.client() as client:
        listed = {name: flags for flags, _delimiter, name in client.list_folders()}
    assert b"\\Noselect" in listed["Intake/Accepted"], listed

    ledger.env.run("poll", "--once", check=True)

    ledger.check()
    assert Path(half, ".maildir").is_dir()
    report(request.node.name, ledger.tally.line())
