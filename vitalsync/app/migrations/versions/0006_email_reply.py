"""messages carry a reply token: an emailed reply to reply+TOKEN@reply_domain finds its message

Revision ID: 0006_email_reply
Revises: 0006_inbox

Messages planned before this revision have none; their emails go without a Reply-To token (replies
then reach the sender address, read by a person), as before.
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0006_email_reply'
down_revision = '0006_inbox'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reply_token', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.create_index(batch_op.f('ix_message_reply_token'), ['reply_token'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_message_reply_token'))
        batch_op.drop_column('reply_token')
