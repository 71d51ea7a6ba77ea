"""write-back outbox: patients' answers on their way to the PMS (pms_write)

Revision ID: 0006_writeback
Revises: 0006_answers
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
import vitalsync.core.db


revision = '0006_writeback'
down_revision = '0006_answers'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pms_write',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('appointment_key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('answer', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('created_at', vitalsync.core.db.UTCDateTime(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', vitalsync.core.db.UTCDateTime(), nullable=False),
    sa.Column('done_at', vitalsync.core.db.UTCDateTime(), nullable=True),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('pms_write', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pms_write_appointment_key'), ['appointment_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_pms_write_status'), ['status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('pms_write', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pms_write_status'))
        batch_op.drop_index(batch_op.f('ix_pms_write_appointment_key'))

    op.drop_table('pms_write')
