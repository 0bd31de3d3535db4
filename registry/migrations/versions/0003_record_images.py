"""Site evidence images: the VPC/NPDE PNGs a site sends with its validation record (blobs).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "validation_record_images",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["validation_records.id"],
            name=op.f("fk_validation_record_images_record_id_validation_records"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_validation_record_images")),
        sa.UniqueConstraint(
            "record_id", "position", name=op.f("uq_validation_record_images_record_id_position")
        ),
    )
    with op.batch_alter_table("validation_record_images", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_validation_record_images_record_id"), ["record_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_validation_record_images_sha256"), ["sha256"], unique=False)


def downgrade() -> None:
    op.drop_table("validation_record_images")
