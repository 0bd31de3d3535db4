"""``interop registry``: submit, list, show, search, export, validate, publish, deprecate,
withdraw, serve, import-dir, sparql (the operator's commands: ``registry_admin``) — against the
local registry (``$INTEROP_HOME``, ``$INTEROP_DATABASE_URL``) or a remote API (``--api URL``,
token from ``--token`` or ``$INTEROP_TOKEN``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from interop.errors import InteropError, MissingExtraError
from interop.schema import ModelCard, parse_json
from interop.settings import get_settings
from registry import Registry, SearchQuery, ValidationReport

registry_app = typer.Typer(
    help="The model registry: versioned, validated, searchable models.", no_args_is_help=True
)
console = Console()

ApiOpt = Annotated[
    str | None, typer.Option("--api", envvar="INTEROP_API", help="Registry API URL (else local)")
]
TokenOpt = Annotated[
    str | None, typer.Option("--token", envvar="INTEROP_TOKEN", help="Bearer token for --api")
]
VersionOpt = Annotated[int | None, typer.Option("--version", "-V", help="Version number (default: latest)")]
MODEL_SUFFIXES = {".xml", ".sbml", ".omex", ".ant", ".txt", ".pharmml"}


@contextmanager
def _local() -> Iterator[Registry]:
    from interop.workflows.registry_validation import open_validating_registry

    with open_validating_registry(get_settings()) as reg:
        yield reg


@contextmanager
def _remote(api: str, token: str | None) -> Iterator[Any]:
    from interop.workflows.remote import RemoteRegistry

    client = RemoteRegistry(api, token)
    try:
        yield client
    finally:
        client.close()


def _card(path: Path | None) -> ModelCard | None:
    if path is None:
        return None
    return parse_json(ModelCard, path.read_text(encoding="utf-8"), source=str(path))


def _print_report(stages: list[dict[str, Any]], title: str) -> None:
    table = Table(title=title)
    for col in ("stage", "status", "issues"):
        table.add_column(col)
    colours = {"passed": "green", "warning": "yellow", "failed": "red", "skipped": "dim"}
    for st in stages:
        issues = st.get("issues", [])
        errors = [i for i in issues if i["severity"] == "error"]
        warnings = [i for i in issues if i["severity"] == "warning"]
        shown = errors[:3] or [i for i in issues if i["severity"] == "info"][:2]
        text = "\n".join(i["message"][:160] for i in shown)
        if warnings:
            cats: dict[str, int] = {}
            for w in warnings:
                cats[w.get("category") or "other"] = cats.get(w.get("category") or "other", 0) + 1
            text = (
                (text + "\n" if text else "") + "warnings: " + ", ".join(f"{k} {v}" for k, v in cats.items())
            )
        table.add_row(st["name"], f"[{colours.get(st['status'], 'white')}]{st['status']}[/]", text)
    console.print(table)


def _version_line(d: dict[str, Any]) -> str:
    return (
        f"[bold]{d['model_id']}@{d['version']}[/] {d['status']:<10} {d['format']:<8} "
        f"{d['institution']:<12} {d['title']}"
    )


def submit(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="SBML, Antimony, OMEX, PharmML")],
    card: Annotated[Path | None, typer.Option("--card", help="model card JSON")] = None,
    model_id: Annotated[str | None, typer.Option("--id", help="model id (card-less files)")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="format (default: detected)")] = None,
    validate: Annotated[bool, typer.Option(help="run the validation pipeline")] = True,
    api: ApiOpt = None,
    token: TokenOpt = None,
    set_values: Annotated[list[str], typer.Option("--set", help="PharmML value NAME=NUMBER")] = [],  # noqa: B006
    units: Annotated[list[str], typer.Option("--unit", help="OBSERVABLE=UNIT or dose=UNIT")] = [],  # noqa: B006
    drug: Annotated[str | None, typer.Option("--drug", help="RxNorm code of the drug [=NAME]")] = None,
) -> None:
    """Register a model file: a new immutable version (identical content: the existing one)."""
    from registry.formats.options import conversion_options

    c = _card(card)
    options = conversion_options(set_values, units, drug)
    if api:
        with _remote(api, token) as rr:
            d = rr.submit_file(
                file, card=c, model_id=model_id, fmt=fmt, sets=set_values, units=units, drug=drug
            )
            console.print(("Identical to " if d["deduplicated"] else "Stored ") + _version_line(d))
            if validate:
                rep = rr.validate(d["model_id"], d["version"])
                _print_report(rep["stages"], f"validation of {d['model_id']}@{d['version']}")
                _exit_if_failed(f"{d['model_id']}@{d['version']}", rep["stages"])
        return
    with _local() as reg:
        s = reg.submit_file(
            file.read_bytes(), filename=file.name, fmt=fmt, card=c, model_id=model_id, options=options
        )
        console.print(
            ("Identical to " if s.deduplicated else "Stored ")
            + f"[bold]{s.model_id}@{s.version}[/] ({s.format}, sha256 {s.sbml_sha256[:12]}…)"
            + ("" if s.has_card or s.is_ml else " [yellow]without a model card[/]")
        )
        if validate:
            rep = reg.validate(s.model_id, s.version)
            _print_report(rep.to_dicts(), f"validation of {s.model_id}@{s.version}")
            _exit_if_failed(f"{s.model_id}@{s.version}", rep.to_dicts())


VALIDATION_FAILED_EXIT = 3


def _exit_if_failed(ref: str, stages: list[dict[str, Any]]) -> None:
    """Exit 3 when the version was stored but a validation stage failed, naming the stage."""
    failed = [s for s in stages if s["status"] == "failed"]
    if not failed:
        return
    msg = next((i["message"] for i in failed[0]["issues"] if i["severity"] == "error"), "")
    Console(stderr=True).print(
        f"[bold red]validation failed:[/] {ref} is stored, but the {failed[0]['name']} stage failed"
        + (f": {msg[:200]}" if msg else ""),
        highlight=False,
        soft_wrap=True,
    )
    raise typer.Exit(VALIDATION_FAILED_EXIT)


def list_(api: ApiOpt = None, token: TokenOpt = None) -> None:
    """Every model version."""
    _search(SearchQuery(per_page=1000), api, token, all_pages=True)


def _search(q: SearchQuery, api: str | None, token: str | None, all_pages: bool) -> None:
    page = q.page
    while True:
        qp = SearchQuery(**{**q.__dict__, "page": page})
        if api:
            with _remote(api, token) as rr:
                params = {k: v for k, v in qp.__dict__.items() if v not in (None, False)}
                res = rr.search(**params)
            items, total, pages = res["items"], res["total"], res["pages"]
        else:
            with _local() as reg:
                p = reg.search(qp)
            items, total, pages = [i.__dict__ for i in p.items], p.total, p.pages
        for d in items:
            console.print(_version_line(d), highlight=False)
        if not all_pages or page >= pages:
            break
        page += 1
    console.print(f"[dim]{total} version(s); page {page} of {pages}[/]")


def search(
    text: Annotated[str | None, typer.Argument(help="free text over title and description")] = None,
    drug: str | None = None,
    atc: str | None = None,
    rxnorm: str | None = None,
    annotation: Annotated[str | None, typer.Option(help="annotation term, e.g. CHEBI:15765")] = None,
    fmt: Annotated[str | None, typer.Option("--format")] = None,
    institution: str | None = None,
    status: str | None = None,
    predicts: Annotated[str | None, typer.Option(help="ML models: predicted quantity, e.g. CL")] = None,
    feature: Annotated[
        str | None, typer.Option(help="ML models: a feature's code, e.g. 2160-0, CYP3A5")
    ] = None,
    latest_only: bool = False,
    page: int = 1,
    per_page: int = 50,
    all_pages: Annotated[bool, typer.Option("--all", help="every page")] = False,
    api: ApiOpt = None,
    token: TokenOpt = None,
) -> None:
    """Search versions by drug (name/ATC/RxNorm), text, annotation, format, institution, status,
    and ML models by predicted quantity and feature."""
    q = SearchQuery(
        text=text,
        drug=drug,
        atc=atc,
        rxnorm=rxnorm,
        annotation=annotation,
        format=fmt,
        institution=institution,
        status=status,
        predicts=predicts,
        feature=feature,
        latest_only=latest_only,
        page=page,
        per_page=per_page,
    )
    _search(q, api, token, all_pages)


def _records_table(records: list[Any], title: str) -> None:
    """All sites' validation records side by side: one column per record, one row per metric."""
    if not records:
        console.print("[dim]no validation records[/]")
        return
    table = Table(title=title)
    table.add_column("metric")
    for r in records:
        table.add_column(f"{r.site}\n{r.created_at:%Y-%m-%d}", justify="right")
    table.add_row("patients / levels", *[f"{r.n_patients} / {r.n_levels}" for r in records])
    table.add_row("excluded patients", *[str(r.n_excluded_patients) for r in records])
    keys: list[tuple[str, str, str]] = []
    for r in records:
        for m in r.metrics:
            k = (m.setting, m.observable, m.name)
            if k not in keys:
                keys.append(k)
    for k in keys:
        cells = []
        for r in records:
            m = next((m for m in r.metrics if (m.setting, m.observable, m.name) == k), None)
            ci = (
                f" [{m.ci_low:.3g}, {m.ci_high:.3g}]"
                if m and m.ci_low is not None and m.ci_high is not None
                else ""
            )
            cells.append("—" if m is None else f"{m.value:.4g}{ci}")
        table.add_row(f"{k[0]} {k[1]} {k[2]}", *cells)
    table.add_row("software", *[r.software for r in records])
    table.add_row("dataset", *[r.dataset_fingerprint[:12] + "…" for r in records])
    console.print(table)


def show(
    model_id: str,
    version: VersionOpt = None,
    validation: Annotated[bool, typer.Option("--validation", help="sites' validation records")] = False,
    card: Annotated[bool, typer.Option("--card", help="print the model card JSON")] = False,
    api: ApiOpt = None,
    token: TokenOpt = None,
) -> None:
    """A version: status (who, when), files, latest validation report; --validation: sites' records."""
    if api:
        with _remote(api, token) as rr:
            d = rr.latest(model_id, version)
            rep = rr.report(model_id, d["version"])
            records = rr.list_validation_records(model_id, d["version"]) if validation else []
        files, stages, card_json = d["files"], (rep or {}).get("stages"), d["card"]
    else:
        with _local() as reg:
            s = reg.get(model_id, version)
            d = {
                "model_id": s.model_id,
                "version": s.version,
                "status": s.status,
                "format": s.format,
                "institution": s.institution,
                "title": s.title,
                "sbml_sha256": s.sbml_sha256,
                "submitted_by": s.submitted_by,
                "created_at": s.created_at,
                "status_changed_by": s.status_changed_by,
                "status_changed_at": s.status_changed_at,
            }
            files = [f.__dict__ for f in reg.files(model_id, s.version)]
            r = reg.report(model_id, s.version)
            stages = r.to_dicts() if r else None
            records = reg.list_validation_records(model_id, s.version) if validation else []
            shown_card = s.ml_card or s.card_or_none
            card_json = None if shown_card is None else shown_card.model_dump(mode="json")
    console.print(_version_line(d), highlight=False)
    console.print(
        f"  sha256 {d['sbml_sha256']}\n  submitted by {d['submitted_by']} at {d['created_at']}\n"
        f"  {d['status']} by {d['status_changed_by']} at {d['status_changed_at']}",
        highlight=False,
    )
    for f in files:
        console.print(
            f"  file {f['path']:<40} {f['role']:<9} {f['size']:>8} B  {f['sha256'][:12]}…", highlight=False
        )
    if card_json is None:
        console.print("  [yellow]no model card: cannot be bound to patients[/]")
    elif card:
        console.print_json(json.dumps(card_json))
    if stages:
        _print_report(stages, f"latest validation of {d['model_id']}@{d['version']}")
    else:
        console.print("  [dim]not validated yet[/]")
    if validation:
        _records_table(records, f"validation records of {d['model_id']}@{d['version']}")


def export(
    model_id: str,
    version: VersionOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="omex | turtle | json-ld | sbml")] = "omex",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="file (default: stdout)")] = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
) -> None:
    """Export a version as a COMBINE archive, its metadata as Turtle or JSON-LD, or its SBML."""
    if fmt not in ("omex", "turtle", "json-ld", "sbml"):
        raise typer.BadParameter("format must be omex, turtle, json-ld or sbml")
    if api:
        with _remote(api, token) as rr:
            v = rr.latest(model_id, version)["version"]
            data = rr.sbml(model_id, v).encode() if fmt == "sbml" else rr.export(model_id, v, fmt)
    else:
        with _local() as reg:
            if fmt == "omex":
                data = reg.export_omex(model_id, version)
            elif fmt == "sbml":
                data = reg.get(model_id, version).sbml.encode()
            else:
                data = reg.export_rdf(model_id, version, fmt).encode()
    if output is None:
        if fmt == "omex":
            raise typer.BadParameter("an OMEX archive needs -o FILE")
        sys.stdout.write(data.decode())
    else:
        output.write_bytes(data)
        console.print(f"wrote {output} ({len(data)} bytes)")


def validate(model_id: str, version: VersionOpt = None, api: ApiOpt = None, token: TokenOpt = None) -> None:
    """Run the validation pipeline; a version with no failed stage becomes 'validated'."""
    if api:
        with _remote(api, token) as rr:
            v = rr.latest(model_id, version)["version"]
            rep = rr.validate(model_id, v)
            stages, passed = rep["stages"], rep["passed"]
    else:
        with _local() as reg:
            v = reg.get(model_id, version).version
            r: ValidationReport = reg.validate(model_id, v)
            stages, passed = r.to_dicts(), r.is_valid
    _print_report(stages, f"validation of {model_id}@{v}")
    if not passed:
        failed = next(s for s in stages if s["status"] == "failed")
        msg = next((i["message"] for i in failed["issues"] if i["severity"] == "error"), "")
        raise _ValidationFailed(f"{model_id}@{v} failed the {failed['name']} stage: {msg}")


class _ValidationFailed(InteropError):
    pass


def publish(model_id: str, version: int, api: ApiOpt = None, token: TokenOpt = None) -> None:
    """validated -> published (curators; only with no failed validation stage)."""
    if api:
        with _remote(api, token) as rr:
            rr.publish(model_id, version)
    else:
        with _local() as reg:
            reg.publish(model_id, version)
    console.print(f"published {model_id}@{version}")


def deprecate(
    model_id: str, version: int, reason: str = "", api: ApiOpt = None, token: TokenOpt = None
) -> None:
    """-> deprecated (curators)."""
    if api:
        with _remote(api, token) as rr:
            rr.deprecate(model_id, version, reason)
    else:
        with _local() as reg:
            reg.deprecate(model_id, version, reason=reason)
    console.print(f"deprecated {model_id}@{version}")


def serve(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the HTTP API (OpenAPI at /docs) over the local registry settings."""
    try:
        import uvicorn  # the 'api' extra

        from interop.api import create_app
    except ImportError as exc:
        raise MissingExtraError(exc.name or "fastapi", extra="api", purpose="serving the HTTP API") from exc

    uvicorn.run(create_app(get_settings()), host=host, port=port, log_level="info")


def import_dir(
    directory: Annotated[Path, typer.Argument(exists=True, file_okay=False)],
    validate: Annotated[bool, typer.Option(help="validate each version")] = True,
    api: ApiOpt = None,
    token: TokenOpt = None,
) -> None:
    """Register every model file under DIR (a NAME.card.json beside a file is its card)."""
    paths = sorted(
        p
        for p in directory.rglob("*")
        if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES and not p.name.endswith(".card.json")
    )
    rows: list[tuple[str, str, str]] = []
    ctx = _remote(api, token) if api else _local()
    backend: Any
    with (
        ctx as backend,
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        ) as progress,
    ):
        task = progress.add_task("importing", total=len(paths))
        for p in paths:
            progress.update(task, description=f"importing {p.name}")
            card_path = p.with_name(p.name.split(".")[0] + ".card.json")
            try:
                c = _card(card_path) if card_path.exists() else None
                if api:
                    d = backend.submit_file(p, card=c)
                    mid, v = d["model_id"], d["version"]
                    passed, stages = True, []
                    if validate:
                        rep = backend.validate(mid, v)
                        passed, stages = rep["passed"], rep["stages"]
                else:
                    s = backend.submit_file(p.read_bytes(), filename=p.name, card=c)
                    mid, v = s.model_id, s.version
                    passed, stages = True, []
                    if validate:
                        r = backend.validate(mid, v)
                        passed, stages = r.is_valid, r.to_dicts()
                if not validate:
                    rows.append((p.name, f"{mid}@{v}", "stored"))
                elif passed:
                    rows.append((p.name, f"{mid}@{v}", "validated"))
                else:
                    failed = next(s for s in stages if s["status"] == "failed")
                    msg = next((i["message"] for i in failed["issues"] if i["severity"] == "error"), "")
                    rows.append((p.name, f"{mid}@{v}", f"failed {failed['name']}: {msg[:120]}"))
            except InteropError as exc:
                rows.append((p.name, "-", f"refused: {exc}"))
            progress.advance(task)
    table = Table(title=f"import of {directory}")
    for col in ("file", "version", "result"):
        table.add_column(col)
    for r in rows:
        table.add_row(*r)
    console.print(table)
    counts = {
        k: sum(1 for r in rows if r[2].startswith(k)) for k in ("validated", "stored", "failed", "refused")
    }
    console.print(f"{len(paths)} file(s): " + ", ".join(f"{v} {k}" for k, v in counts.items() if v))


def sparql(
    query: Annotated[str, typer.Argument(help="SPARQL SELECT, or @FILE")],
    api: ApiOpt = None,
    token: TokenOpt = None,
) -> None:
    """Run a SPARQL SELECT over the whole registry's metadata graph."""
    if query.startswith("@"):
        query = Path(query[1:]).read_text(encoding="utf-8")
    if api:
        with _remote(api, token) as rr:
            rows = rr.sparql(query)
    else:
        with _local() as reg:
            rows = reg.sparql(query)
    if not rows:
        console.print("[dim]no results[/]")
        return
    table = Table()
    cols = list(rows[0])
    for c in cols:
        table.add_column(c)
    for r in rows:
        table.add_row(*[r.get(c, "") for c in cols])
    console.print(table)
    console.print(f"[dim]{len(rows)} row(s)[/]")


def withdraw(
    model_id: str, version: int, reason: str = "", api: ApiOpt = None, token: TokenOpt = None
) -> None:
    """-> withdrawn (curators): bytes kept for audit, gone from search and binding."""
    if api:
        with _remote(api, token) as rr:
            rr.withdraw(model_id, version, reason)
    else:
        with _local() as reg:
            reg.withdraw(model_id, version, reason=reason)
    console.print(f"withdrew {model_id}@{version}")


def register(app: typer.Typer) -> None:
    for name, fn in (
        ("submit", submit),
        ("list", list_),
        ("show", show),
        ("search", search),
        ("export", export),
        ("validate", validate),
        ("publish", publish),
        ("deprecate", deprecate),
        ("serve", serve),
        ("import-dir", import_dir),
        ("sparql", sparql),
        ("withdraw", withdraw),
    ):
        registry_app.command(name)(fn)
    from interop.cli import registry_admin

    registry_admin.add_commands(registry_app)
    app.add_typer(registry_app, name="registry")
