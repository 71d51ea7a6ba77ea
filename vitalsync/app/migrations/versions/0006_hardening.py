"""the audit log records where each action came from (a client's address, or the command line)

Revision ID: 0006_hardening
Revises: 0006_writeback
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0006_hardening'
down_revision = '0006_writeback'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.add_column(sa.Column('address', sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.drop_column('address')
