"""``interop demo``: one synthetic patient through converter, registry and twin."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from interop.settings import get_settings


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        serve: bool = typer.Option(
            False, "--serve", help="Then serve the web app with the demo in the twin workspace"
        ),
        host: str = typer.Option("127.0.0.1", help="With --serve: interface to listen on"),
        port: int = typer.Option(8000, help="With --serve: TCP port"),
    ) -> None:
        """Run the end-to-end demo on the embedded default (SQLite and local files, no network)."""
        from interop.workflows.demo import run_demo  # heavy (roadrunner, pandas): load on use

        console = Console()
        res = run_demo(get_settings())
        console.print(f"Registered model [bold]{res.model_id}@{res.model_version}[/] in {res.database_url}")
        console.print(f"Imported FHIR bundle: patient [bold]{res.patient_id}[/] (pseudonymised)")
        table = Table(title="Gentamicin levels: observed vs a priori (population) prediction")
        for col in ("time (h)", "observed", "predicted", "unit", "pred/obs"):
            table.add_column(col, justify="right")
        for r in res.rows:
            ratio = float(r["predicted"]) / float(r["observed"])
            table.add_row(
                f"{r['time_h']:.2f}",
                f"{r['observed']:.2f}",
                f"{r['predicted']:.3f}",
                str(r["unit"]),
                f"{ratio:.2f}",
            )
        console.print(table)
        console.print("Files written:")
        for label, path in (
            ("patient record", res.record_path),
            ("conversion report", res.report_path),
            ("predictions", res.predictions_path),
            ("plot (PNG)", res.plot_path),
        ):
            console.print(f"  {label:18} {path}")
        if serve:
            from urllib.parse import urlencode

            from interop.cli.serve import run_server, web_app

            web = web_app(get_settings())
            query = urlencode(
                {"model": f"{res.model_id}@{res.model_version}", "patient": res.patient_id, "folder": "demo"}
            )
            console.print(
                f"Open the demo's model and patient in the twin workspace: http://{host}:{port}/twin?{query}"
            )
            console.print(
                "Sign in with a registry token: interop registry user add NAME --institution I --role reader"
            )
            run_server(web, host, port)
