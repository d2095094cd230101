"""Kafka clusters as managed objects; failed alerts and consumer status per cluster (issue 11)

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-25 23:40:00
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('kafka_clusters',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('bootstrap_servers', sa.String(), nullable=False),
    sa.Column('security_protocol', sa.String(), nullable=False),
    sa.Column('sasl_mechanism', sa.String(), nullable=True),
    sa.Column('group_id', sa.String(), nullable=True),
    sa.Column('settings', JSONB(), nullable=False),
    sa.Column('secrets', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('modified', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kafka_clusters')),
    sa.UniqueConstraint('name', name=op.f('uq_kafka_clusters_name')),
    )
    op.create_index(op.f('ix_kafka_clusters_created_at'), 'kafka_clusters', ['created_at'], unique=False)
    op.add_column('failed_alerts', sa.Column('cluster', sa.String(), server_default='default', nullable=False))
    op.drop_constraint('uq_failed_alerts_topic_partition_offset', 'failed_alerts', type_='unique')
    op.create_unique_constraint('uq_failed_alerts_cluster_topic_partition_offset', 'failed_alerts',
                                ['cluster', 'topic', 'partition', 'offset'])
    op.add_column('ingest_status', sa.Column('cluster', sa.String(), server_default='default', nullable=False))
    op.add_column('ingest_status', sa.Column('error', sa.Text(), nullable=True))
    op.add_column('ingest_status', sa.Column('error_at', sa.DateTime(), nullable=True))
    op.add_column('ingest_status', sa.Column('topic_errors', JSONB(), server_default=sa.text("'{}'::jsonb"),
                                             nullable=False))
    op.drop_constraint('pk_ingest_status', 'ingest_status', type_='primary')
    op.create_primary_key('pk_ingest_status', 'ingest_status', ['consumer', 'cluster'])


def downgrade() -> None:
    op.drop_constraint('pk_ingest_status', 'ingest_status', type_='primary')
    op.execute("DELETE FROM ingest_status WHERE cluster <> 'default'")
    op.create_primary_key('pk_ingest_status', 'ingest_status', ['consumer'])
    for col in ('topic_errors', 'error_at', 'error', 'cluster'):
        op.drop_column('ingest_status', col)
    op.drop_constraint('uq_failed_alerts_cluster_topic_partition_offset', 'failed_alerts', type_='unique')
    op.execute("DELETE FROM failed_alerts WHERE cluster <> 'default'")
    op.drop_column('failed_alerts', 'cluster')
    op.create_unique_constraint('uq_failed_alerts_topic_partition_offset', 'failed_alerts',
                                ['topic', 'partition', 'offset'])
    op.drop_table('kafka_clusters')
