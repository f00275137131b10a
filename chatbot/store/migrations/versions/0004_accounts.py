"""Accounts: users (with a session version and a token quota override), one-time links (invitations and password
resets), hourly usage per user, and the account an owner (conversation space) belongs to.

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

from chatbot.store.schema import UTCDateTime

revision = "0004"
down_revision = "0002"  # re-pointed to "0003" when the tree revision lands
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create users, links and usage_hourly, and add owners.user_id (every existing owner stays anonymous)."""
    op.create_table(
        "users",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("username", sa.String(254), nullable=False),
        sa.Column("password_hash", sa.String(512), nullable=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("session_version", sa.Integer, nullable=False),
        sa.Column("daily_token_limit", sa.BigInteger, nullable=True),
        sa.Column("oidc_subject", sa.String(255), nullable=True),
    )
    op.create_index("uq_users_username", "users", [sa.text("lower(username)")], unique=True)
    op.create_index("uq_users_oidc_subject", "users", ["oidc_subject"], unique=True)
    op.create_table(
        "links",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("user_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
        sa.Column("created_by", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("used_at", UTCDateTime, nullable=True),
    )
    op.create_table(
        "usage_hourly",
        sa.Column("user_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("hour", UTCDateTime, primary_key=True),
        sa.Column("messages", sa.Integer, nullable=False),
        sa.Column("tokens", sa.BigInteger, nullable=False),
    )
    if op.get_bind().dialect.name == "sqlite":
        # Not batch mode: rebuilding owners would drop the old table, and with foreign keys on, SQLite's implicit
        # DELETE of that drop cascades to every conversation. SQLite adds a NULL column with a reference in place.
        op.execute("ALTER TABLE owners ADD COLUMN user_id VARCHAR(32) REFERENCES users (id) ON DELETE CASCADE")
    else:
        op.add_column("owners", sa.Column("user_id", sa.String(32), nullable=True))
        op.create_foreign_key("fk_owners_user_id", "owners", "users", ["user_id"], ["id"], ondelete="CASCADE")
    op.create_index("uq_owners_user_id", "owners", ["user_id"], unique=True)
