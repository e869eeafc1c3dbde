"""app and queue: rater active flag, opaque crowd key per study, queue rank of requeued items

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 19:06:32.243280
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('rater', schema=None) as batch_op:
        batch_op.add_column(sa.Column('active', sa.Boolean(), nullable=False, server_default=sa.true()))

    with op.batch_alter_table('study', schema=None) as batch_op:
        batch_op.add_column(sa.Column('crowd_key', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.create_unique_constraint('uq_study_crowd_key', ['crowd_key'])
    # Existing studies get their opaque crowd key now (new ones get it when created).
    study = sa.table('study', sa.column('id', sa.Integer), sa.column('crowd_key', sa.String))
    bind = op.get_bind()
    for (study_id,) in bind.execute(sa.select(study.c.id).where(study.c.crowd_key.is_(None))).all():
        bind.execute(study.update().where(study.c.id == study_id).values(crowd_key=secrets.token_urlsafe(12)))

    with op.batch_alter_table('studyitem', schema=None) as batch_op:
        batch_op.add_column(sa.Column('queue_rank', sa.Integer(), nullable=False, server_default='1'))
        batch_op.create_index('ix_studyitem_requeue', ['study_id', 'queue_rank', 'n_completed', 'position'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('studyitem', schema=None) as batch_op:
        batch_op.drop_index('ix_studyitem_requeue')
        batch_op.drop_column('queue_rank')

    with op.batch_alter_table('study', schema=None) as batch_op:
        batch_op.drop_constraint('uq_study_crowd_key', type_='unique')
        batch_op.drop_column('crowd_key')

    with op.batch_alter_table('rater', schema=None) as batch_op:
        batch_op.drop_column('active')

