"""family answers: each member of a family message confirms or declines on their own

Revision ID: 0003_scaleout
Revises: 0002
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
import vitalsync.core.db


revision = '0003_scaleout'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('messagetarget', schema=None) as batch_op:
        batch_op.add_column(sa.Column('answer', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column('answered_at', vitalsync.core.db.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('messagetarget', schema=None) as batch_op:
        batch_op.drop_column('answered_at')
        batch_op.drop_column('answer')
