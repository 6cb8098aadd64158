"""Resends (issue 11): a document sent again points at the numbered document it copies.

Revision ID: 0005_resend
Revises: 0004_digest_run
Create Date: 2026-12-06

`document.copy_of_id` is a plain nullable integer, added in place on both databases:
SQLite adds a column without rebuilding the table, and a rebuild of `document` (with
foreign keys on) would cascade to the findings when the old table is dropped. The new
status words (`already_numbered`, reply kind `already_registered`) fit the existing
columns and need no change.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_resend"
down_revision: str | None = "0004_digest_run"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("document", sa.Column("copy_of_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # Native DROP COLUMN (SQLite 3.35): no rebuild, so no cascade to the findings.
        op.execute("ALTER TABLE document DROP COLUMN copy_of_id")
    else:
        op.drop_column("document", "copy_of_id")
