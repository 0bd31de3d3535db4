"""``interop registry`` operator commands on the local registry: user (add, list, revoke,
deactivate), audit (paged, filtered), gc, verify, backup, restore."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer

from interop.cli.registry import _local, console

__all__ = ["add_commands", "user_app"]

user_app = typer.Typer(help="Users and bearer tokens of the local registry.", no_args_is_help=True)


@user_app.command("add")
def user_add(
    name: str,
    institution: Annotated[str, typer.Option(help="institution id")],
    role: Annotated[str, typer.Option(help="reader | contributor | curator")] = "reader",
    expires_in: Annotated[
        float, typer.Option("--expires-in", help="token lifetime in days", min=0.0001)
    ] = 90,
) -> None:
    """Create (or re-key, revoking earlier tokens) a user and print a new token (shown once)."""
    if role not in ("reader", "contributor", "curator"):
        raise typer.BadParameter("role must be reader, contributor or curator")
    with _local() as reg:
        token = reg.create_user(name, institution, role, expires_in=dt.timedelta(days=expires_in))  # type: ignore[arg-type]
    console.print(token, highlight=False, soft_wrap=True)


@user_app.command("list")
def user_list() -> None:
    """Every user: institution, role, active, usable tokens and when the newest expires."""
    with _local() as reg:
        for u in reg.list_users():
            console.print(
                f"{u.name:<20} {u.institution:<12} {u.role:<12} {'active' if u.active else 'inactive':<9} "
                f"{u.active_tokens} token(s)"
                + (f", expires {u.expires_at:%Y-%m-%d %H:%M}" if u.expires_at else ""),
                highlight=False,
            )


@user_app.command("revoke")
def user_revoke(name: str) -> None:
    """Revoke every token of NAME (they get 401 at once)."""
    with _local() as reg:
        n = reg.revoke_tokens(name)
    console.print(f"revoked {n} token(s) of {name}")


@user_app.command("deactivate")
def user_deactivate(name: str) -> None:
    """Deactivate NAME: every token stops working (``user add`` re-activates with a new token)."""
    with _local() as reg:
        reg.deactivate_user(name)
    console.print(f"deactivated {name}")


def audit(
    model_id: Annotated[str | None, typer.Argument()] = None,
    actor: str | None = None,
    action: str | None = None,
    since: Annotated[dt.datetime | None, typer.Option(help="UTC, e.g. 2026-11-29T12:00")] = None,
    until: Annotated[dt.datetime | None, typer.Option(help="UTC")] = None,
    page: Annotated[int, typer.Option(min=1)] = 1,
    per_page: Annotated[int, typer.Option(min=1, max=1000)] = 100,
) -> None:
    """The append-only audit log (local registry), paged and filtered."""
    from registry.auditlog import AuditFilter

    f = AuditFilter(model_id, actor, action, _utc(since), _utc(until))
    with _local() as reg:
        p = reg.audit_page(f, page, per_page)
    for e in p.items:
        where = f"{e.model_id}@{e.version}" if e.model_id else ""
        console.print(
            f"{e.id:>6} {e.at:%Y-%m-%d %H:%M:%S} {e.actor:<12} {e.institution:<10} {e.action:<22} {where} "
            f"{json.dumps(e.detail) if e.detail else ''}",
            highlight=False,
        )
    pages = max(1, -(-p.total // p.per_page))
    console.print(f"[dim]{p.total} entr(y/ies); page {p.page} of {pages}[/]")


def _utc(t: dt.datetime | None) -> dt.datetime | None:
    return None if t is None else (t if t.tzinfo else t.replace(tzinfo=dt.UTC))


def gc(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list what would go, delete nothing")] = False,
    grace_hours: Annotated[float, typer.Option(help="keep files younger than this", min=0)] = 24.0,
    claim: Annotated[
        bool, typer.Option("--claim", help="first mark an unmarked blob store as this database's")
    ] = False,
) -> None:
    """Remove blobs no version references (never a referenced one; refused on a blob store that
    another database owns)."""
    with _local() as reg:
        if claim:
            if reg.blobs.owner() not in (None, reg.registry_id):
                raise typer.BadParameter("the blob store already belongs to another registry")
            reg.blobs.claim(reg.registry_id)
        r = reg.collect_garbage(grace_s=grace_hours * 3600, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for d in r.removed_blobs:
        console.print(f"{verb} blob {d}", highlight=False)
    console.print(f"{verb} {len(r.removed_blobs)} blob(s) and {len(r.removed_temp_files)} temporary file(s)")


def verify() -> None:
    """Re-hash every blob against its rows, check every row has its blob and the audit chain;
    exit 1 and list the faults when any."""
    with _local() as reg:
        r = reg.verify()
    for f in r.faults:
        console.print(f"[red]fault:[/] {f}", highlight=False, soft_wrap=True)
    console.print(
        f"checked {r.blobs_checked} blob(s) and {r.audit_entries} audit entr(y/ies): {len(r.faults)} fault(s)"
    )
    if r.faults:
        raise typer.Exit(1)


def backup(directory: Annotated[Path, typer.Argument(help="new or empty folder")]) -> None:
    """Copy the whole registry (rows, blobs, audit chain) into DIRECTORY."""
    with _local() as reg:
        counts = reg.backup(directory)
    console.print(f"backed up to {directory}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


def restore(directory: Annotated[Path, typer.Argument(exists=True, file_okay=False)]) -> None:
    """Load a backup into the (empty) registry of the current settings, then verify it."""
    with _local() as reg:
        counts = reg.restore(directory)
        r = reg.verify()
    console.print(f"restored from {directory}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if r.faults:
        for f in r.faults:
            console.print(f"[red]fault:[/] {f}", highlight=False)
        raise typer.Exit(1)


def add_commands(registry_app: typer.Typer) -> None:
    for name, fn in (
        ("audit", audit),
        ("gc", gc),
        ("verify", verify),
        ("backup", backup),
        ("restore", restore),
    ):
        registry_app.command(name)(fn)
    registry_app.add_typer(user_app, name="user")
