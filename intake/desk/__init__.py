"""The secretariat's desk: what a person decides about a recorded message, on the record.

Each action is a function that runs ONE transaction and writes an `AuditEvent`
naming who acted, when and why; the replies it announces are written to the
outbox in that same transaction (`intake.replies.outbox` sends them). The command line
(`intake.cli`) and the dashboard (`intake.web`) call the same functions.

- `actions`: admit, reject, release, withdraw, resend.
- `reprocess`: judge recorded messages again from their stored bytes; a dry
  run by default, and only changed outcomes are answered, never twice.
- `rejudge`: reading the stored bytes again and writing a new verdict over the rows.
- `replies`: composing the reply a desk action announces.
- `show`: everything about one message; `export`: the documents list and files.
- `accounts`: dashboard accounts (Argon2id) and their sessions.

An action that does not apply (admitting a message that is not late, say)
raises `Refused` with one sentence for the person, and changes nothing.
"""

from __future__ import annotations


class Refused(Exception):
    """The action does not apply to this record; `str()` says why, in one sentence."""
