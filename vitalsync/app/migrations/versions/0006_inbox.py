"""inbox of provider events: replies, delivery reports and email events, stored before they are acknowledged

Revision ID: 0006_inbox
Revises: 0006_groupsend

Unique on (provider, kind, event_id), so a replayed webhook is stored and acted on once.
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
import vitalsync.core.db


revision = '0006_inbox'
down_revision = '0006_groupsend'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('inbox_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('event_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('reference', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('payload', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('received_at', vitalsync.core.db.UTCDateTime(), nullable=False),
    sa.Column('processed_at', vitalsync.core.db.UTCDateTime(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('provider', 'kind', 'event_id', name='uq_inbox_event_provider_kind_event_id')
    )
    with op.batch_alter_table('inbox_event', schema=None) as batch_op:
        batch_op.create_index('ix_inbox_event_pending', ['id'], unique=False,
                              sqlite_where=sa.text('processed_at IS NULL'), postgresql_where=sa.text('processed_at IS NULL'))


def downgrade() -> None:
    with op.batch_alter_table('inbox_event', schema=None) as batch_op:
        batch_op.drop_index('ix_inbox_event_pending', sqlite_where=sa.text('processed_at IS NULL'),
                            postgresql_where=sa.text('processed_at IS NULL'))

    op.drop_table('inbox_event')
