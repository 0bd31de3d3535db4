"""Security and data safety: token expiry, hash-chained audit log (existing entries chained in
id order), TRUNCATE refused on the audit log (PostgreSQL), and the registry's identity.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    _expire_existing_tokens()
    dialect = op.get_bind().dialect.name
    # The append-only triggers forbid the one-time fill of the new hash columns: lift them briefly.
    _drop_update_trigger(dialect)
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prev_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("entry_sha256", sa.String(length=64), nullable=True))
    _chain_existing()
    _create_update_trigger(dialect)
    if dialect == "postgresql":
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
        )
    meta = op.create_table(
        "registry_meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_registry_meta")),
    )
    op.bulk_insert(meta, [{"key": "registry_id", "value": str(uuid.uuid4())}])


def _expire_existing_tokens() -> None:
    """Tokens made before expiry existed get the default lifetime from their creation."""
    conn = op.get_bind()
    t = sa.table(
        "tokens",
        sa.column("id", sa.Integer),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("expires_at", sa.DateTime(timezone=True)),
    )
    for r in conn.execute(sa.select(t.c.id, t.c.created_at)).all():
        conn.execute(t.update().where(t.c.id == r.id).values(expires_at=r.created_at + dt.timedelta(days=90)))


def _drop_update_trigger(dialect: str) -> None:
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update ON audit_log")
    elif dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")


def _create_update_trigger(dialect: str) -> None:
    if dialect == "postgresql":
        op.execute(
            "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
        )
    elif dialect == "sqlite":
        for what in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{what.lower()} BEFORE {what} ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
            )


def _chain_existing() -> None:
    from registry.auditlog import GENESIS, entry_hash

    conn = op.get_bind()
    t = sa.table(
        "audit_log",
        sa.column("id", sa.Integer),
        sa.column("at", sa.DateTime(timezone=True)),
        sa.column("actor", sa.String),
        sa.column("institution", sa.String),
        sa.column("action", sa.String),
        sa.column("model_id", sa.String),
        sa.column("version", sa.Integer),
        sa.column("detail", sa.JSON),
        sa.column("prev_sha256", sa.String),
        sa.column("entry_sha256", sa.String),
    )
    prev = GENESIS
    for r in conn.execute(sa.select(t).order_by(t.c.id)).mappings().all():
        h = entry_hash(
            prev, r["at"], r["actor"], r["institution"], r["action"], r["model_id"], r["version"], r["detail"]
        )
        conn.execute(t.update().where(t.c.id == r["id"]).values(prev_sha256=prev, entry_sha256=h))
        prev = h


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.drop_table("registry_meta")
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
    _drop_update_trigger(dialect)
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_column("entry_sha256")
        batch_op.drop_column("prev_sha256")
    _create_update_trigger(dialect)
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
