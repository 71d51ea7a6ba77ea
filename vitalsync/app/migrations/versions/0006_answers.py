"""replies that changed an earlier answer: reply.changed

Revision ID: 0006_answers
Revises: 0005

A patient who confirms and then declines (or the other way) changed their mind; the reply that did
it is marked so that Needs attention and the alerts can say so. Earlier replies are not marked.
"""

from alembic import op
import sqlalchemy as sa


revision = '0006_answers'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('reply', schema=None) as batch_op:
        batch_op.add_column(sa.Column('changed', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('reply', schema=None) as batch_op:
        batch_op.drop_column('changed')
