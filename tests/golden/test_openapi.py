"""The OpenAPI document, whole, as served at ``/openapi.json``."""

from __future__ import annotations

from pathlib import Path

from receiver import Settings, __version__, create_app
from tests.helpers import asgi_client

from .golden import check_json


async def test_the_openapi_document_is_the_golden_one(tmp_path: Path) -> None:
    settings = Settings.load(database_url=f"sqlite:///{tmp_path / 'photohook.db'}", environ={})
    async with asgi_client(create_app(settings, worker=False)) as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    # The release number changes with every release, not with the contract.
    assert document["info"]["version"] == __version__
    document["info"]["version"] = "<photohook version>"
    check_json("openapi.json", document)
