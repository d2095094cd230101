"""A follow-up request's status history (issue 14, shown on the source page): a trigger records each status
a request takes (and each change of a person's or listener's words for it), at insert and at every change,
whichever code path made it. Existing requests get their
current status as their first entry.

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-26 05:40:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ENUM

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "followup_status_changes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("followup_request_id", sa.Integer,
                  sa.ForeignKey("followup_requests.id", ondelete="CASCADE",
                                name="fk_followup_status_changes_request"),
                  nullable=False),
        sa.Column("status", ENUM(name="followup_status", create_type=False), nullable=False),
        sa.Column("status_text", sa.Text),
        sa.Column("status_message", sa.Text),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_followup_status_changes"),
    )
    op.create_index("ix_followup_status_changes_followup_request_id", "followup_status_changes",
                    ["followup_request_id"])
    op.execute("""
        CREATE FUNCTION followup_status_record() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status
                    OR NEW.status_text IS DISTINCT FROM OLD.status_text THEN
                INSERT INTO followup_status_changes (followup_request_id, status, status_text, status_message,
                                                     created_at)
                VALUES (NEW.id, NEW.status, NEW.status_text, NEW.status_message, timezone('utc', clock_timestamp()));
            END IF;
            RETURN NULL;
        END $$;
        CREATE TRIGGER followup_status_history AFTER INSERT OR UPDATE OF status, status_text ON followup_requests
            FOR EACH ROW EXECUTE FUNCTION followup_status_record();
        INSERT INTO followup_status_changes (followup_request_id, status, status_text, status_message, created_at)
            SELECT id, status, status_text, status_message, modified FROM followup_requests ORDER BY id;
    """)


def downgrade() -> None:
    op.execute("DROP TRIGGER followup_status_history ON followup_requests; DROP FUNCTION followup_status_record()")
    op.drop_table("followup_status_changes")
