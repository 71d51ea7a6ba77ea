"""job leases: one process at a time runs a sync or a reconciliation pass

Revision ID: 0002
Revises: 0001
"""

from alembic import op
import sqlalchemy as sa
import vitalsync.core.db


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('job_lease',
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('owner', sa.String(), nullable=False),
    sa.Column('until', vitalsync.core.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('job_lease')
