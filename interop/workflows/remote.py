"""A small httpx client of the registry API, used by the CLI's ``--api URL`` mode and by workflows
that send validation records to a remote registry (kept out of ``interop.api``, the server, so that
``interop.workflows`` never imports it).

HTTP errors become the hub's typed errors (404 -> NotFoundError, 401/403 -> PermissionDenied,
others -> RegistryError) carrying the server's one-line detail.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from interop.errors import NotFoundError, PermissionDenied, RegistryError
from interop.schema import ModelCard, ValidationRecord, parse

__all__ = ["RemoteRegistry"]


class RemoteRegistry:
    def __init__(self, url: str, token: str | None = None, *, timeout: float = 300.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def _check(self, r: httpx.Response) -> httpx.Response:
        if r.is_success:
            return r
        try:
            detail = r.json().get("detail", r.text)
        except ValueError:
            detail = r.text
        cls = {404: NotFoundError, 401: PermissionDenied, 403: PermissionDenied}.get(
            r.status_code, RegistryError
        )
        raise cls(f"HTTP {r.status_code}: {detail}", source=str(r.request.url))

    def submit_file(
        self,
        path: Path,
        *,
        card: ModelCard | None = None,
        model_id: str | None = None,
        fmt: str | None = None,
        sets: list[str] | None = None,
        units: list[str] | None = None,
        drug: str | None = None,
    ) -> dict[str, Any]:
        data: dict[str, Any] = {
            k: v
            for k, v in (
                ("card", card.model_dump_json() if card else None),
                ("model_id", model_id),
                ("format", fmt),
                ("set", sets),
                ("unit", units),
                ("drug", drug),
            )
            if v
        }
        with open(path, "rb") as fh:
            r = self.http.post("/models", files={"file": (path.name, fh)}, data=data)
        return self._check(r).json()  # type: ignore[no-any-return]

    def search(self, **params: Any) -> dict[str, Any]:
        clean = {k: v for k, v in params.items() if v is not None}
        return self._check(self.http.get("/models", params=clean)).json()  # type: ignore[no-any-return]

    def versions(self, model_id: str) -> list[dict[str, Any]]:
        return self._check(self.http.get(f"/models/{model_id}")).json()  # type: ignore[no-any-return]

    def version(self, model_id: str, version: int) -> dict[str, Any]:
        return self._check(self.http.get(f"/models/{model_id}/versions/{version}")).json()  # type: ignore[no-any-return]

    def latest(self, model_id: str, version: int | None) -> dict[str, Any]:
        return self.version(model_id, version) if version else self.versions(model_id)[-1]

    def sbml(self, model_id: str, version: int) -> str:
        return self._check(self.http.get(f"/models/{model_id}/versions/{version}/sbml")).text

    def report(self, model_id: str, version: int) -> dict[str, Any] | None:
        r = self.http.get(f"/models/{model_id}/versions/{version}/report")
        return None if r.status_code == 404 else self._check(r).json()

    def validate(self, model_id: str, version: int) -> dict[str, Any]:
        return self._check(self.http.post(f"/models/{model_id}/versions/{version}/validate")).json()  # type: ignore[no-any-return]

    def publish(self, model_id: str, version: int) -> dict[str, Any]:
        return self._check(self.http.post(f"/models/{model_id}/versions/{version}/publish")).json()  # type: ignore[no-any-return]

    def deprecate(self, model_id: str, version: int, reason: str = "") -> dict[str, Any]:
        r = self.http.post(f"/models/{model_id}/versions/{version}/deprecate", params={"reason": reason})
        return self._check(r).json()  # type: ignore[no-any-return]

    def withdraw(self, model_id: str, version: int, reason: str = "") -> None:
        r = self.http.post(f"/models/{model_id}/versions/{version}/withdraw", params={"reason": reason})
        self._check(r)

    def export(self, model_id: str, version: int, fmt: str) -> bytes:
        r = self.http.get(f"/models/{model_id}/versions/{version}/export", params={"format": fmt})
        return self._check(r).content

    def add_validation_record(
        self, record: ValidationRecord, images: Sequence[tuple[str, bytes]] = ()
    ) -> int:
        """Send a record (JSON), or with its ``(title, PNG bytes)`` images in one multipart request."""
        path = f"/models/{record.model_id}/versions/{record.model_version}/validation-records"
        if images:
            r = self.http.post(
                f"{path}/with-images",
                data={"record": record.model_dump_json(), "titles": [t for t, _ in images]},
                files=[("images", (f"image-{k}.png", b, "image/png")) for k, (_, b) in enumerate(images)],
            )
        else:
            r = self.http.post(
                path, content=record.model_dump_json(), headers={"Content-Type": "application/json"}
            )
        return int(self._check(r).json()["id"])

    def list_validation_records(self, model_id: str, version: int) -> list[ValidationRecord]:
        r = self._check(self.http.get(f"/models/{model_id}/versions/{version}/validation-records"))
        return [parse(ValidationRecord, d, source=self.url) for d in r.json()]

    def sparql(self, query: str) -> list[dict[str, str]]:
        return self._check(self.http.get("/sparql", params={"query": query})).json()  # type: ignore[no-any-return]

    def close(self) -> None:
        self.http.close()
