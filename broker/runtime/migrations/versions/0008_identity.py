"""identity (SkyPortal drop-in, issue 9): SkyPortal's user columns (bio, contact_phone, oauth_uid,
preferences, is_bot) and created_at/modified on roles (SkyPortal's /api/roles returns them).

SkyPortal's ACLs and role -> ACL mapping are inserted by broker.runtime.db.seed, which runs after every
upgrade (idempotently, from models.enums), so existing databases get the new ACLs too.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 17:30:00
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('users', sa.Column('bio', sa.String(), nullable=True))
    op.add_column('users', sa.Column('contact_phone', sa.String(), nullable=True))
    op.add_column('users', sa.Column('oauth_uid', sa.String(), nullable=True))
    op.add_column('users', sa.Column('preferences', postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column('users', sa.Column('is_bot', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_unique_constraint(op.f('uq_users_oauth_uid'), 'users', ['oauth_uid'])
    # existing roles get the upgrade's time; new ones get theirs from the model's default
    for col in ('created_at', 'modified'):
        op.add_column('roles', sa.Column(col, sa.DateTime(), nullable=False,
                                         server_default=sa.text("(now() AT TIME ZONE 'utc')")))
        op.alter_column('roles', col, server_default=None)
    op.create_index(op.f('ix_roles_created_at'), 'roles', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_roles_created_at'), table_name='roles')
    op.drop_column('roles', 'modified')
    op.drop_column('roles', 'created_at')
    op.drop_constraint(op.f('uq_users_oauth_uid'), 'users', type_='unique')
    op.drop_column('users', 'is_bot')
    op.drop_column('users', 'preferences')
    op.drop_column('users', 'oauth_uid')
    op.drop_column('users', 'contact_phone')
    op.drop_column('users', 'bio')
