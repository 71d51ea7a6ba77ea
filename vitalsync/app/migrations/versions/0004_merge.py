"""merge the console's and scale-out's branches into one head again

Revision ID: 0004
Revises: 0003_console, 0003_scaleout

Two branches of work each added a migration on top of 0002. This revision changes nothing; it gives
the history one head again, so `new_revision` (autogenerate) has one parent to build on.
"""

revision = '0004'
down_revision = ('0003_console', '0003_scaleout')
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
