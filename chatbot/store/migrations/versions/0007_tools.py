"""Tools: the tool ids a conversation's replies may use, a reply's tool steps, and tool calls in hourly usage.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add conversations.tools and messages.tools (JSON, NULL: none), and usage_hourly.tool_calls (0)."""
    op.add_column("usage_hourly", sa.Column("tool_calls", sa.Integer, nullable=False, server_default="0"))
    if op.get_bind().dialect.name == "sqlite":
        # Not batch mode: rebuilding the tables would drop their search triggers (0003) and, with foreign keys on,
        # the drop's implicit DELETE would cascade. SQLite adds NULL columns in place.
        op.execute("ALTER TABLE conversations ADD COLUMN tools JSON")
        op.execute("ALTER TABLE messages ADD COLUMN tools JSON")
    else:
        op.add_column("conversations", sa.Column("tools", sa.JSON, nullable=True))
        op.add_column("messages", sa.Column("tools", sa.JSON, nullable=True))

