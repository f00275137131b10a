"""The team layer: conversation settings (instructions, temperature, reply length cap, reasoning effort), projects
(a conversation in at most one), share links (snapshots of an active path), named presets of settings, and the
indexes of the usage charts (replies and hourly usage by time).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

from chatbot.store.schema import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Added to conversations in place: NULL means "the operator's default" (and "in no project").
SETTINGS_COLUMNS = [
    ("instructions", "TEXT", sa.Text()),
    ("temperature", "FLOAT", sa.Float()),
    ("max_tokens", "INTEGER", sa.Integer()),
    ("reasoning_effort", "VARCHAR(16)", sa.String(16)),
]


def upgrade() -> None:
    """Create projects, shares and presets, and add the settings and project_id columns to conversations."""
    op.create_table(
        "projects",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner_id", sa.String(32), sa.ForeignKey("owners.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("instructions", sa.Text, nullable=False),
        sa.Column("pinned", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_projects_owner_id", "projects", ["owner_id"])
    op.create_table(
        "shares",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("owner_id", sa.String(32), sa.ForeignKey("owners.id", ondelete="CASCADE"), nullable=False),
        sa.Column("conversation_id", sa.String(32), sa.ForeignKey("conversations.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("snapshot", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=True),
        sa.Column("revoked_at", UTCDateTime, nullable=True),
    )
    op.create_index("ix_shares_owner_created", "shares", ["owner_id", "created_at"])
    op.create_index("ix_shares_conversation_id", "shares", ["conversation_id"])
    op.create_table(
        "presets",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner_id", sa.String(32), sa.ForeignKey("owners.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("owner_id", "name", name="uq_presets_owner_name"),
    )
    if op.get_bind().dialect.name == "sqlite":
        # Not batch mode: rebuilding conversations would drop its search triggers (0003) and, with foreign keys on,
        # the drop's implicit DELETE would cascade to every message. SQLite adds NULL columns in place.
        for name, sql_type, _ in SETTINGS_COLUMNS:
            op.execute(f"ALTER TABLE conversations ADD COLUMN {name} {sql_type}")
        op.execute("ALTER TABLE conversations ADD COLUMN project_id VARCHAR(32) "
                   "REFERENCES projects (id) ON DELETE SET NULL")
    else:
        for name, _, column_type in SETTINGS_COLUMNS:
            op.add_column("conversations", sa.Column(name, column_type, nullable=True))
        op.add_column("conversations", sa.Column("project_id", sa.String(32), nullable=True))
        op.create_foreign_key("fk_conversations_project_id", "conversations", "projects", ["project_id"], ["id"],
                              ondelete="SET NULL")
    op.create_index("ix_conversations_project_id", "conversations", ["project_id"])
    # The usage charts read the last 30 days of replies and of hourly usage.
    op.create_index("ix_messages_created_at", "messages", ["created_at"])
    op.create_index("ix_usage_hourly_hour", "usage_hourly", ["hour"])
