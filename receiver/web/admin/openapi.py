"""The OpenAPI 3.1 document (``GET /openapi.json``), derived from ``contract``: the admin API's
operations and their structs, the ingest and health endpoints, and the webhooks photohook sends."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import msgspec

from receiver.__about__ import __version__
from receiver.sources import KINDS
from receiver.web.admin.contract import (
    Accepted,
    Error,
    Event,
    Ok,
    Params,
)
from receiver.web.admin.endpoints import OPERATIONS, PATH_PARAMETERS, Operation

JSON = "application/json"
Schema = dict[str, Any]
_REF = "#/components/schemas/{name}"
_PATH_PARAMETER = re.compile(r"{(\w+)(?::\w+)?}")  # a route's {name} or {name:convertor}
_ERRORS = {
    400: "Malformed request (body not JSON, bad Content-Length).",
    401: "Missing or wrong token, secret or admin token.",
    403: "The client address is not allowed.",
    404: "No such resource.",
    405: "Method not allowed.",
    409: "The resource's state does not allow it.",
    413: "The body is larger than the limit.",
    415: "The body is not JSON, or is compressed.",
    422: "A value breaks the schema; `field` names it.",
    503: "photohook cannot store it now; retry.",
}


def _ref(kind: type[msgspec.Struct]) -> Schema:
    return {"$ref": _REF.format(name=kind.__name__)}


def _errors(*statuses: int) -> dict[str, Any]:
    return {
        str(status): {"description": _ERRORS[status], "content": {JSON: {"schema": _ref(Error)}}}
        for status in sorted(statuses)
    }


def _ok(kind: type[msgspec.Struct], description: str = "OK") -> dict[str, Any]:
    return {"200": {"description": description, "content": {JSON: {"schema": _ref(kind)}}}}


def _path_parameters(path: str) -> list[Schema]:
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string"},
            "description": PATH_PARAMETERS[name],
        }
        for name in _PATH_PARAMETER.findall(path)
    ]


@cache
def _query_parameters(kind: type[Params]) -> list[Schema]:
    """Each field of a parameters struct as an optional query parameter."""
    (_,), components = msgspec.json.schema_components([kind], ref_template=_REF)
    parameters = []
    for name, schema in components[kind.__name__]["properties"].items():
        schema = dict(schema)
        description = schema.pop("description", None)
        if schema.get("default", ...) is None:
            del schema["default"]
        if "anyOf" in schema:  # absent is how a query string says null
            (schema_of_value,) = (s for s in schema.pop("anyOf") if s != {"type": "null"})
            schema |= schema_of_value
            description = schema.pop("description", description)
        parameter = {"name": name, "in": "query", "required": False, "schema": schema}
        parameters.append(parameter | ({"description": description} if description else {}))
    return parameters


def _operation(operation: Operation) -> dict[str, Any]:
    described: dict[str, Any] = {
        "tags": ["admin"],
        "summary": operation.summary,
        "operationId": operation.handler,
        "parameters": _path_parameters(operation.path) + _query_parameters(operation.params),
        "responses": _ok(operation.answer) | _errors(*operation.statuses()),
    }
    if operation.body is not None:
        described["requestBody"] = {
            "required": operation.body_required,
            "content": {JSON: {"schema": _ref(operation.body)}},
        }
    return described


def _hook(with_token: bool) -> dict[str, Any]:
    path = "/hooks/{source}/{token}" if with_token else "/hooks/{source}"
    return {
        "post": {
            "tags": ["ingest"],
            "summary": "Receive a provider callback"
            + (" (token in the URL)" if with_token else ""),
            "operationId": "receive_with_token" if with_token else "receive",
            "security": [],
            "parameters": [
                *_path_parameters(path),
                {
                    "name": "X-WEBHOOK-SECRET",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "Crop.photo's shared secret.",
                },
            ],
            "requestBody": {"required": True, "content": {JSON: {"schema": _callback()}}},
            "responses": _ok(Accepted, "Stored durably (or a duplicate)")
            | _errors(400, 401, 403, 404, 413, 415, 422, 503),
        }
    }


def _callback() -> Schema:
    return {
        "description": "The provider's callback, of the shapes the source's kind takes; fields "
        "not described here are kept in the event's payload.",
        "anyOf": [_ref(body) for kind in KINDS.values() for body in kind.bodies],
    }


def _health(summary: str, operation_id: str, *errors: int) -> dict[str, Any]:
    return {
        "get": {
            "tags": ["health"],
            "summary": summary,
            "operationId": operation_id,
            "security": [],
            "responses": _ok(Ok) | _errors(*errors),
        }
    }


def _files() -> dict[str, Any]:
    return {
        "get": {
            "tags": ["files"],
            "summary": "A kept result file of the local result store, by its signed link",
            "description": "The stable URL (kept_url) of a file kept with keep_results; it "
            "expires after [results] link_lifetime. Streamed with the file's content type.",
            "operationId": "kept_file",
            "security": [],
            "parameters": [
                {
                    "name": "token",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                    "description": "The signed token of the file's link.",
                }
            ],
            "responses": {
                "200": {
                    "description": "The file",
                    "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
                }
            }
            | _errors(403, 404),
        }
    }


def _header(name: str, description: str) -> Schema:
    return {
        "name": name,
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": description,
    }


#: What an HTTP destination receives: the event, signed as Standard Webhooks says.
_DELIVERY = {
    "post": {
        "summary": "An event delivered to an HTTP destination",
        "description": "photohook POSTs each event a route sends to the destination, at least "
        "once: a receiver deduplicates on webhook-id. A destination's transform may replace "
        "the body. A 2xx answer delivers it; any other is tried again later (honouring "
        "Retry-After on 429 and 503), until the retry schedule gives up; redirects are not "
        "followed; 410 Gone disables the destination.",
        "operationId": "deliver",
        "security": [],
        "parameters": [
            _header(
                "webhook-id",
                "The event id, or a new id for a replay sent as a new message; the same on "
                "every attempt.",
            ),
            _header("webhook-timestamp", "When it was signed, in Unix seconds."),
            {
                **_header(
                    "webhook-signature",
                    "Space-separated v1,<base64 HMAC-SHA256> signatures, one per key of the "
                    "destination's secret (several while it is rotated); sent when the "
                    "destination has a secret.",
                ),
                "required": False,
            },
        ],
        "requestBody": {"required": True, "content": {JSON: {"schema": _ref(Event)}}},
        "responses": {
            "2XX": {"description": "Delivered."},
            "410": {"description": "Gone: the destination is disabled."},
            "default": {"description": "Tried again later."},
        },
    }
}


def _schemas() -> dict[str, Schema]:
    kinds: list[type[msgspec.Struct]] = [Error, Accepted, Ok, Event]
    kinds += [body for kind in KINDS.values() for body in kind.bodies]
    params: set[type[msgspec.Struct]] = set()
    for operation in OPERATIONS:
        kinds.append(operation.answer)
        if operation.body is not None:
            kinds.append(operation.body)
        params.add(operation.params)  # for the enums they name; the structs are inlined
    _, components = msgspec.json.schema_components(
        dict.fromkeys([*kinds, *sorted(params, key=lambda p: p.__name__)]), ref_template=_REF
    )
    for inlined in params:
        components.pop(inlined.__name__, None)
    return dict(sorted(components.items()))


def document() -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/hooks/{source}/{token}": _hook(True),
        "/hooks/{source}": _hook(False),
        "/healthz": _health("The process is up", "healthz"),
        "/readyz": _health("The database takes writes", "readyz", 503),
        "/files/{token}": _files(),
    }
    for operation in OPERATIONS:
        path = _PATH_PARAMETER.sub(r"{\1}", operation.path)
        paths.setdefault(path, {})[operation.method.lower()] = _operation(operation)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "photohook",
            "version": __version__,
            "description": "Webhook receiver and event router for Fotor and Crop.photo callbacks.",
        },
        "security": [{"adminToken": []}],
        "paths": paths,
        "webhooks": {"event": _DELIVERY},
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "adminToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "PHOTOHOOK_ADMIN_TOKEN; unset, loopback clients only.",
                }
            },
        },
    }
