"""drop the index on appointment.status

Revision ID: 0005
Revises: 0004

Nearly every appointment is "scheduled", so the index narrowed nothing, and SQLite's planner
(without statistics it takes an equality as selective) chose it over the index on start for
"scheduled and upcoming": a scan of every scheduled appointment. A full sync also built it for
nothing (~0.1 s of 500,000 rows).
"""

from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('appointment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_appointment_status'))


def downgrade() -> None:
    with op.batch_alter_table('appointment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_appointment_status'), ['status'], unique=False)
