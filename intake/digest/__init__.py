"""The secretariat's daily digest: one message on what came in since the last one, what needs a
person, the replies that failed, and the time left before the deadline.

- `contents.py` reads it from the database into a `Digest` (no I/O besides the session);
- `compose.py` renders it as text and HTML (templates/) and as a MIME message, with the
  replies' header and encoding care (`intake.replies.compose.compose_notice`);
- `sending.py` sends it through the outbox's SMTP code and records it (`DigestRun`), so that
  "since the last digest" has a meaning and replicas send one digest a day, not one each.

`intake digest` prints or sends one; `intake run` sends one a day at `[event] digest_at` (at start, when that
time has passed and the day's digest was not sent).
"""

from intake.digest.compose import ComposedDigest, compose_digest, render_text
from intake.digest.contents import Digest, gather, last_sent_end
from intake.digest.sending import DigestOutcome, claim, send_digest, sent_on

__all__ = [
    "ComposedDigest",
    "Digest",
    "DigestOutcome",
    "claim",
    "compose_digest",
    "gather",
    "last_sent_end",
    "render_text",
    "send_digest",
    "sent_on",
]
