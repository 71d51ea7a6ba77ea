"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 13:17:25.574038
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel
import vitalsync.core.db


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
   
    op.create_table('appointment',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('patient_key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('location_key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('provider_key', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('type', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('start', vitalsync.core.db.UTCDateTime(), nullable=False),
    sa.Column('end', vitalsync.core.db.UTCDateTime(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('previous_start', vitalsync.core.db.UTCDateTime(), nullable=True),
    sa.Column('first_seen_at', vitalsync.core.db.UTCDateTime(), nullable=False),
    sa.Column('changed_at', vitalsync.core.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    with op.batch_alter_table('appointment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_appointment_patient_key'), ['patient_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_appointment_start'), ['start'], unique=False)
        batch_op.create_index(batch_op.f('ix_appointment_status'), ['status'], unique=False)

    op.create_table('decision',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('at', vitalsync.core.db.UTCDateTime(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('decision', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('appointment_key', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('patient_key', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('subject_key', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('decision', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_decision_appointment_key'), ['appointment_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_decision_key'), ['key'], unique=False)
        batch_op.create_index(batch_op.f('ix_decision_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_decision_patient_key'), ['patient_key'], unique=False)

    op.create_table('location',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('timezone', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('patient_key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('appointment_key', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('subject_key', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('language', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('asks_reply', sa.Boolean(), nullable=False),
    sa.Column('send_at', vitalsync.core.db.UTCDateTime(), nullable=False),
    sa.Column('deadline', vitalsync.core.db.UTCDateTime(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('status_at', vitalsync.core.db.UTCDateTime(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('in_flight', sa.Boolean(), nullable=False),
    sa.Column('lease_owner', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('lease_until', vitalsync.core.db.UTCDateTime(), nullable=True),
    sa.Column('provider_ref', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('created_at', vitalsync.core.db.UTCDateTime(), nullable=False),
    sa.Column('sent_at', vitalsync.core.db.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_message_appointment_key'), ['appointment_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_message_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_message_patient_key'), ['patient_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_message_provider_ref'), ['provider_ref'], unique=False)
        batch_op.create_index(batch_op.f('ix_message_send_at'), ['send_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_message_status'), ['status'], unique=False)

    op.create_table('optout',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('patient_key', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('at', vitalsync.core.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('optout', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_optout_address'), ['address'], unique=False)
        batch_op.create_index(batch_op.f('ix_optout_channel'), ['channel'], unique=False)
        batch_op.create_index(batch_op.f('ix_optout_patient_key'), ['patient_key'], unique=False)

    op.create_table('patient',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('first_name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('last_name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('mobile', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('landline', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('sms_ok', sa.Boolean(), nullable=False),
    sa.Column('email_ok', sa.Boolean(), nullable=False),
    sa.Column('voice_ok', sa.Boolean(), nullable=False),
    sa.Column('language', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('timezone', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('guarantor_key', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('updated_at', vitalsync.core.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patient_guarantor_key'), ['guarantor_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_patient_mobile'), ['mobile'], unique=False)

    op.create_table('pickup',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('patient_key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('location_key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('ready_at', vitalsync.core.db.UTCDateTime(), nullable=False),
    sa.Column('picked_up', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    with op.batch_alter_table('pickup', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pickup_patient_key'), ['patient_key'], unique=False)

    op.create_table('provider',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('location_key', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('recall',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('patient_key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('due', sa.Date(), nullable=False),
    sa.Column('type', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    with op.batch_alter_table('recall', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recall_patient_key'), ['patient_key'], unique=False)

    op.create_table('syncrun',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mode', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('started_at', vitalsync.core.db.UTCDateTime(), nullable=False),
    sa.Column('finished_at', vitalsync.core.db.UTCDateTime(), nullable=True),
    sa.Column('cursor', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('rows_read', sa.Integer(), nullable=False),
    sa.Column('changed', sa.Integer(), nullable=False),
    sa.Column('removed', sa.Integer(), nullable=False),
    sa.Column('rejected', sa.Integer(), nullable=False),
    sa.Column('seconds', sa.Float(), nullable=False),
    sa.Column('detail', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('messageevent',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('at', vitalsync.core.db.UTCDateTime(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('detail', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['message.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('messageevent', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_messageevent_message_id'), ['message_id'], unique=False)

    op.create_table('messagetarget',
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('appointment_key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('patient_key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('appointment_version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['message.id'], ),
    sa.PrimaryKeyConstraint('message_id', 'position')
    )
    with op.batch_alter_table('messagetarget', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_messagetarget_appointment_key'), ['appointment_key'], unique=False)

    op.create_table('reply',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', vitalsync.core.db.UTCDateTime(), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('body', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('intent', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('patient_key', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('needs_staff', sa.Boolean(), nullable=False),
    sa.Column('answer', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('handled_at', vitalsync.core.db.UTCDateTime(), nullable=True),
    sa.Column('handled_by', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.ForeignKeyConstraint(['message_id'], ['message.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('reply', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reply_address'), ['address'], unique=False)
        batch_op.create_index(batch_op.f('ix_reply_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_reply_needs_staff'), ['needs_staff'], unique=False)
        batch_op.create_index(batch_op.f('ix_reply_patient_key'), ['patient_key'], unique=False)



def downgrade() -> None:
   
    with op.batch_alter_table('reply', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reply_patient_key'))
        batch_op.drop_index(batch_op.f('ix_reply_needs_staff'))
        batch_op.drop_index(batch_op.f('ix_reply_message_id'))
        batch_op.drop_index(batch_op.f('ix_reply_address'))

    op.drop_table('reply')
    with op.batch_alter_table('messagetarget', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_messagetarget_appointment_key'))

    op.drop_table('messagetarget')
    with op.batch_alter_table('messageevent', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_messageevent_message_id'))

    op.drop_table('messageevent')
    op.drop_table('syncrun')
    with op.batch_alter_table('recall', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recall_patient_key'))

    op.drop_table('recall')
    op.drop_table('provider')
    with op.batch_alter_table('pickup', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pickup_patient_key'))

    op.drop_table('pickup')
    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patient_mobile'))
        batch_op.drop_index(batch_op.f('ix_patient_guarantor_key'))

    op.drop_table('patient')
    with op.batch_alter_table('optout', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_optout_patient_key'))
        batch_op.drop_index(batch_op.f('ix_optout_channel'))
        batch_op.drop_index(batch_op.f('ix_optout_address'))

    op.drop_table('optout')
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_message_status'))
        batch_op.drop_index(batch_op.f('ix_message_send_at'))
        batch_op.drop_index(batch_op.f('ix_message_provider_ref'))
        batch_op.drop_index(batch_op.f('ix_message_patient_key'))
        batch_op.drop_index(batch_op.f('ix_message_kind'))
        batch_op.drop_index(batch_op.f('ix_message_appointment_key'))

    op.drop_table('message')
    op.drop_table('location')
    with op.batch_alter_table('decision', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_decision_patient_key'))
        batch_op.drop_index(batch_op.f('ix_decision_message_id'))
        batch_op.drop_index(batch_op.f('ix_decision_key'))
        batch_op.drop_index(batch_op.f('ix_decision_appointment_key'))

    op.drop_table('decision')
    with op.batch_alter_table('appointment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_appointment_status'))
        batch_op.drop_index(batch_op.f('ix_appointment_start'))
        batch_op.drop_index(batch_op.f('ix_appointment_patient_key'))

    op.drop_table('appointment')
