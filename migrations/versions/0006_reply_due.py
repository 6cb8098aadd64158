"""The outbox's claim reads an event's oldest pending reply from an index.

Revision ID: 0006_reply_due
Revises: 0005_resend
Create Date: 2026-12-07

`ix_reply_due` (event, status, id): the claim (`intake.replies.outbox`) asks for the pending
reply with the lowest id; with only `ix_reply_status` each claim read every pending reply
and sorted them, so sending a backlog of n replies read about n²/2 rows (on PostgreSQL,
1,000 replies took a second longer to send than on SQLite). An index build, no data change.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006_reply_due"
down_revision: str | None = "0005_resend"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_reply_due", "reply", ["event", "status", "id"])


def downgrade() -> None:
    op.drop_index("ix_reply_due", table_name="reply")
