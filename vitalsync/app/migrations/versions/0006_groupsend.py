"""group sends: who started which manual kind's send to which appointments, and how many it queued

Revision ID: 0006_groupsend
Revises: 0006_hardening
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
import vitalsync.core.db


revision = '0006_groupsend'
down_revision = '0006_hardening'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('group_send',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', vitalsync.core.db.UTCDateTime(), nullable=False),
    sa.Column('started_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('locations', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('appointment_type', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('matched', sa.Integer(), nullable=False),
    sa.Column('queued', sa.Integer(), nullable=False),
    sa.Column('skipped', sa.Integer(), nullable=False),
    sa.Column('already', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('group_send', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_group_send_at'), ['at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('group_send', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_group_send_at'))

    op.drop_table('group_send')
