"""The OpenAPI 3.1 document of the ingest endpoints and the admin API (``GET /openapi.json``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from receiver.__about__ import __version__
from receiver.store import DELIVERY_STATES, DESTINATION_STATES, TASK_STATES
from receiver.store.records import RETRY_OUTCOMES

JSON = "application/json"
Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def _errors(*statuses: int) -> dict[str, Any]:
    described = {
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
    return {
        str(status): {
            "description": described[status],
            "content": {JSON: {"schema": _ref("Error")}},
        }
        for status in statuses
    }


def _ok(schema: Schema, description: str = "OK") -> dict[str, Any]:
    return {"200": {"description": description, "content": {JSON: {"schema": schema}}}}


def _query(name: str, schema: Schema, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _path(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": description,
    }


_TEXT = {"type": "string", "maxLength": 256}
_EVENT_FILTERS = [
    _query("source", _TEXT, "Source name."),
    _query("type", _TEXT, "Event type, e.g. fotor.task.completed."),
    _query(
        "status",
        {
            "type": "string",
            "enum": sorted({"in_progress", "completed", "failed", "pending", "processing"}),
        },
        "Status.",
    ),
    _query("task_id", _TEXT, "Fotor taskId or Crop.photo job_id."),
    _query("business_id", _TEXT, "Fotor businessId."),
    _query("label", _TEXT, "One of the event's labels."),
    _query("flagged", {"type": "string", "enum": ["true", "false"]}, "Flagged as sensitive."),
    _query("since", {"type": "string", "format": "date-time"}, "Received at or after (RFC 3339)."),
    _query("until", {"type": "string", "format": "date-time"}, "Received before (RFC 3339)."),
]
_PAGE = [
    _query("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "Items per page."),
    _query("cursor", _TEXT, "`next_cursor` of the previous page."),
]
_DELIVERY_FILTERS = [
    _query("state", {"type": "string", "enum": list(DELIVERY_STATES)}, "Delivery state."),
    _query("destination", _TEXT, "Destination name."),
    _query("event", _TEXT, "Event id."),
]
_REPLAY_BODY = {
    "required": False,
    "content": {
        JSON: {
            "schema": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "destination": {"type": "string", "description": "Only to this destination."},
                    "new_id": {
                        "type": "boolean",
                        "default": False,
                        "description": "Send as a new message, under a new webhook-id, for a "
                        "receiver that must process it again (by default the event id is kept, "
                        "and a receiver that deduplicates drops the replay).",
                    },
                },
            }
        }
    },
}

_COMPONENTS: dict[str, Schema] = {
    "Error": {
        "type": "object",
        "required": ["ok", "error"],
        "properties": {
            "ok": {"const": False},
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "field": {"type": "string"},
                },
            },
        },
    },
    "Accepted": {
        "type": "object",
        "required": ["ok", "event_ids", "duplicate"],
        "properties": {
            "ok": {"const": True},
            "event_ids": {"type": "array", "items": {"type": "string"}},
            "duplicate": {"type": "boolean"},
        },
    },
    "Event": {
        "type": "object",
        "required": [
            "id",
            "source",
            "kind",
            "type",
            "task_id",
            "task_type",
            "status",
            "business_id",
            "labels",
            "result_urls",
            "flagged",
            "received_at",
            "via",
            "payload",
        ],
        "properties": {
            "id": {"type": "string"},
            "source": {"type": "string"},
            "kind": {"type": "string", "enum": ["fotor", "cropphoto"]},
            "type": {"type": "string"},
            "task_id": {"type": "string"},
            "task_type": {"type": "string"},
            "status": {"type": "string"},
            "business_id": _nullable({"type": "string"}),
            "labels": {"type": "array", "items": {"type": "string"}},
            "result_urls": {"type": "array", "items": {"type": "string"}},
            "flagged": {"type": "boolean"},
            "received_at": {"type": "string", "format": "date-time"},
            "via": {"type": "string", "enum": ["callback", "poll"]},
            "payload": {"type": "object"},
        },
    },
    "Delivery": {
        "type": "object",
        "required": [
            "id",
            "event_id",
            "destination",
            "state",
            "attempts",
            "next_attempt_at",
            "last_status",
            "last_error",
            "created_at",
            "updated_at",
        ],
        "properties": {
            "id": {"type": "string"},
            "event_id": {"type": "string"},
            "destination": {"type": "string"},
            "state": {"type": "string", "enum": list(DELIVERY_STATES)},
            "attempts": {"type": "integer"},
            "next_attempt_at": _nullable({"type": "string", "format": "date-time"}),
            "last_status": _nullable({"type": "integer"}),
            "last_error": _nullable({"type": "string"}),
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
        },
    },
    "Attempt": {
        "type": "object",
        "required": ["number", "started_at", "duration_ms", "ok", "status_code", "error"],
        "properties": {
            "number": {"type": "integer"},
            "started_at": {"type": "string", "format": "date-time"},
            "duration_ms": {"type": "number"},
            "ok": {"type": "boolean"},
            "status_code": _nullable({"type": "integer"}),
            "error": _nullable({"type": "string"}),
            "response_headers": _nullable(
                {"type": "array", "items": {"type": "array", "items": {"type": "string"}}}
            ),
            "response_body": _nullable({"type": "string"}),
        },
    },
    "Request": {
        "type": "object",
        "description": "A stored callback; secret headers are redacted.",
        "required": ["id", "source", "via", "received_at", "headers", "body", "duplicate"],
        "properties": {
            "id": {"type": "string"},
            "source": {"type": "string"},
            "via": {"type": "string"},
            "received_at": {"type": "string", "format": "date-time"},
            "peer": _nullable({"type": "string"}),
            "client": _nullable({"type": "string"}),
            "headers": {"type": "array", "items": {"type": "array", "items": {"type": "string"}}},
            "body": {"type": "string"},
            "duplicate": {"type": "boolean"},
        },
    },
    "EventDetail": {
        "type": "object",
        "required": ["event", "duplicates", "request", "other_requests", "deliveries"],
        "properties": {
            "event": _ref("Event"),
            "duplicates": {"type": "integer"},
            "request": _nullable(_ref("Request")),
            "other_requests": {"type": "array", "items": _ref("Request")},
            "deliveries": {
                "type": "array",
                "items": {
                    "allOf": [
                        _ref("Delivery"),
                        {
                            "type": "object",
                            "required": ["history"],
                            "properties": {"history": {"type": "array", "items": _ref("Attempt")}},
                        },
                    ]
                },
            },
        },
    },
    "Task": {
        "type": "object",
        "required": [
            "source",
            "task_id",
            "business_id",
            "state",
            "event_id",
            "created_at",
            "last_seen_at",
            "next_check_at",
            "checks",
            "last_error",
        ],
        "properties": {
            "source": {"type": "string"},
            "task_id": {"type": "string"},
            "business_id": _nullable({"type": "string"}),
            "state": {"type": "string", "enum": list(TASK_STATES)},
            "event_id": _nullable({"type": "string"}),
            "created_at": {"type": "string", "format": "date-time"},
            "last_seen_at": {"type": "string", "format": "date-time"},
            "next_check_at": _nullable({"type": "string", "format": "date-time"}),
            "checks": {"type": "integer"},
            "last_error": _nullable({"type": "string"}),
        },
    },
    "RejectedRequest": {
        "type": "object",
        "description": "An authenticated callback refused for its content, kept to be retried.",
        "required": [
            "id",
            "source",
            "received_at",
            "status",
            "error",
            "body_kept",
            "retries",
            "retried_at",
            "outcome",
            "retry_error",
            "event_ids",
        ],
        "properties": {
            "id": {"type": "string"},
            "source": {"type": "string"},
            "received_at": {"type": "string", "format": "date-time"},
            "status": {"type": "integer", "description": "The answer it was given."},
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "field": {"type": "string"},
                },
            },
            "body_kept": {
                "type": "boolean",
                "description": "False when the body was not read whole (413): it cannot be "
                "retried.",
            },
            "retries": {"type": "integer"},
            "retried_at": _nullable({"type": "string", "format": "date-time"}),
            "outcome": _nullable(
                {
                    "type": "string",
                    "enum": list(RETRY_OUTCOMES),
                    "description": "What the last retry came to.",
                }
            ),
            "retry_error": _nullable(
                {
                    "type": "object",
                    "description": "Why the last retry was refused.",
                    "required": ["status", "code", "message"],
                    "properties": {
                        "status": {"type": "integer"},
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "field": {"type": "string"},
                    },
                }
            ),
            "event_ids": {"type": "array", "items": {"type": "string"}},
        },
    },
    "RejectedRequestDetail": {
        "allOf": [
            _ref("RejectedRequest"),
            {
                "type": "object",
                "description": "With the request as received; secret headers are redacted.",
                "required": ["peer", "client", "headers", "body"],
                "properties": {
                    "peer": _nullable({"type": "string"}),
                    "client": _nullable({"type": "string"}),
                    "headers": {
                        "type": "array",
                        "items": {"type": "array", "items": {"type": "string"}},
                    },
                    "body": _nullable({"type": "string"}),
                },
            },
        ]
    },
    "Destination": {
        "type": "object",
        "required": [
            "name",
            "state",
            "reason",
            "success_rate",
            "attempts_last_hour",
            "last_error",
            "queue_depth",
            "dead",
            "oldest_pending_age",
            "target",
        ],
        "properties": {
            "name": {"type": "string"},
            "state": {"type": "string", "enum": list(DESTINATION_STATES)},
            "reason": _nullable({"type": "string"}),
            "success_rate": _nullable({"type": "number", "minimum": 0, "maximum": 1}),
            "attempts_last_hour": {"type": "integer"},
            "last_error": _nullable({"type": "string"}),
            "queue_depth": {"type": "integer"},
            "dead": {"type": "integer"},
            "oldest_pending_age": _nullable({"type": "number"}),
            "target": _nullable({"type": "string"}),
        },
    },
}


def _page(item: str) -> Schema:
    return {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": _ref(item)},
            "next_cursor": _nullable({"type": "string"}),
        },
    }


def _hook(with_token: bool) -> dict[str, Any]:
    parameters = [_path("source", "A configured source name.")]
    if with_token:
        parameters.append(_path("token", "The source's URL token (photohook url SOURCE)."))
    return {
        "post": {
            "tags": ["ingest"],
            "summary": "Receive a provider callback"
            + (" (token in the URL)" if with_token else ""),
            "security": [],
            "parameters": [
                *parameters,
                {
                    "name": "X-WEBHOOK-SECRET",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "Crop.photo's shared secret.",
                },
            ],
            "requestBody": {"required": True, "content": {JSON: {"schema": {"type": "object"}}}},
            "responses": _ok(_ref("Accepted"), "Stored durably (or a duplicate)")
            | _errors(400, 401, 403, 404, 413, 415, 422, 503),
        }
    }


def _admin(
    summary: str, responses: dict[str, Any], *, parameters: Sequence[Any] = (), body: Any = None
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "tags": ["admin"],
        "summary": summary,
        "parameters": list(parameters),
        "responses": responses | _errors(401, 403),
    }
    if body is not None:
        operation["requestBody"] = body
    return operation


def document() -> dict[str, Any]:
    ok = {"type": "object", "required": ["ok"], "properties": {"ok": {"const": True}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "photohook",
            "version": __version__,
            "description": "Webhook receiver and event router for Fotor and Crop.photo callbacks.",
        },
        "security": [{"adminToken": []}],
        "paths": {
            "/hooks/{source}/{token}": _hook(True),
            "/hooks/{source}": _hook(False),
            "/healthz": {
                "get": {
                    "tags": ["health"],
                    "summary": "The process is up",
                    "security": [],
                    "responses": _ok(ok),
                }
            },
            "/readyz": {
                "get": {
                    "tags": ["health"],
                    "summary": "The database takes writes",
                    "security": [],
                    "responses": _ok(ok) | _errors(503),
                }
            },
            "/api/events": {
                "get": _admin(
                    "List events, newest first",
                    _ok(_page("Event")) | _errors(422),
                    parameters=[*_EVENT_FILTERS, *_PAGE],
                )
            },
            "/api/events/replay": {
                "post": _admin(
                    "Replay every event matching the filters (at most 10,000)",
                    _ok(
                        {
                            "type": "object",
                            "required": ["events", "deliveries"],
                            "properties": {
                                "events": {"type": "integer"},
                                "deliveries": {"type": "integer"},
                            },
                        }
                    )
                    | _errors(400, 422),
                    parameters=[*_EVENT_FILTERS, _PAGE[0]],
                    body=_REPLAY_BODY,
                )
            },
            "/api/events/{event_id}": {
                "get": _admin(
                    "An event, its stored requests, deliveries and attempts",
                    _ok(_ref("EventDetail")) | _errors(404, 422),
                    parameters=[_path("event_id", "Event id.")],
                )
            },
            "/api/events/{event_id}/replay": {
                "post": _admin(
                    "Route an event again and queue new deliveries",
                    _ok(
                        {
                            "type": "object",
                            "required": ["deliveries"],
                            "properties": {
                                "deliveries": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["id", "destination"],
                                        "properties": {
                                            "id": {"type": "string"},
                                            "destination": {"type": "string"},
                                        },
                                    },
                                }
                            },
                        }
                    )
                    | _errors(400, 404, 422),
                    parameters=[_path("event_id", "Event id.")],
                    body=_REPLAY_BODY,
                )
            },
            "/api/deliveries": {
                "get": _admin(
                    "List deliveries, newest first",
                    _ok(_page("Delivery")) | _errors(422),
                    parameters=[*_DELIVERY_FILTERS, *_PAGE],
                )
            },
            "/api/deliveries/retry": {
                "post": _admin(
                    "Queue every dead delivery matching the filters again",
                    _ok(_requeued()) | _errors(422),
                    parameters=[
                        _query(
                            "state",
                            {"type": "string", "enum": ["dead"]},
                            "Only dead ones are retried.",
                        ),
                        _DELIVERY_FILTERS[1],
                        _DELIVERY_FILTERS[2],
                    ],
                )
            },
            "/api/deliveries/{delivery_id}/retry": {
                "post": _admin(
                    "Queue a dead delivery again",
                    _ok(_requeued()) | _errors(404, 409, 422),
                    parameters=[_path("delivery_id", "Delivery id.")],
                )
            },
            "/api/destinations": {
                "get": _admin(
                    "Destinations: state, success rate over the last hour, queue",
                    _ok(
                        {
                            "type": "object",
                            "required": ["items"],
                            "properties": {
                                "items": {"type": "array", "items": _ref("Destination")}
                            },
                        }
                    )
                    | _errors(422),
                )
            },
            **{
                f"/api/destinations/{{name}}/{action}": {
                    "post": _admin(
                        f"{action.capitalize()} a destination",
                        _ok(
                            {
                                "type": "object",
                                "required": ["name", "state"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "state": {"type": "string", "enum": list(DESTINATION_STATES)},
                                },
                            }
                        )
                        | _errors(404, 422),
                        parameters=[_path("name", "Destination name.")],
                    )
                }
                for action in ("pause", "resume")
            },
            "/api/tasks": {
                "get": _admin(
                    "Tasks tracked with the providers, most recently changed first",
                    _ok(
                        {
                            "type": "object",
                            "required": ["items"],
                            "properties": {"items": {"type": "array", "items": _ref("Task")}},
                        }
                    )
                    | _errors(422),
                    parameters=[
                        _query(
                            "state", {"type": "string", "enum": list(TASK_STATES)}, "Task state."
                        ),
                        _PAGE[0],
                    ],
                ),
                "post": _admin(
                    "Track a task submitted to a provider, so its result is recovered if no "
                    "callback comes",
                    _ok(_ref("Task")) | _errors(400, 422),
                    body={
                        "required": True,
                        "content": {
                            JSON: {
                                "schema": {
                                    "type": "object",
                                    "required": ["source", "task_id"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "source": {"type": "string"},
                                        "task_id": {
                                            "type": "string",
                                            "minLength": 1,
                                            "maxLength": 256,
                                        },
                                        "business_id": _nullable({"type": "string"}),
                                    },
                                }
                            }
                        },
                    },
                ),
            },
            "/api/reconciler": {
                "get": _admin(
                    "Per source: reconciled or not, a rejected API key, tasks by state",
                    _ok(
                        {
                            "type": "object",
                            "required": ["sources"],
                            "properties": {
                                "sources": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": [
                                            "source",
                                            "reconciled",
                                            "confirm",
                                            "key_rejected",
                                            "tasks",
                                            "last_error",
                                        ],
                                        "properties": {
                                            "source": {"type": "string"},
                                            "reconciled": {"type": "boolean"},
                                            "confirm": {"type": "boolean"},
                                            "key_rejected": {"type": "boolean"},
                                            "tasks": {
                                                "type": "object",
                                                "additionalProperties": {"type": "integer"},
                                            },
                                            "last_error": _nullable({"type": "string"}),
                                        },
                                    },
                                }
                            },
                        }
                    )
                    | _errors(422),
                )
            },
            **_REJECTED_PATHS,
        },
        "components": {
            "schemas": _COMPONENTS,
            "securitySchemes": {
                "adminToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "PHOTOHOOK_ADMIN_TOKEN; unset, loopback clients only.",
                }
            },
        },
    }


def _requeued() -> Schema:
    return {
        "type": "object",
        "required": ["requeued"],
        "properties": {"requeued": {"type": "integer"}},
    }


_REJECTED_PATHS: dict[str, Any] = {
    "/api/rejected": {
        "get": _admin(
            "List kept rejected requests, newest first",
            _ok(_page("RejectedRequest")) | _errors(422),
            parameters=[
                _query("source", _TEXT, "Source name."),
                _query(
                    "retryable",
                    {"type": "string", "enum": ["true", "false"]},
                    "true: only those a retry can run: not accepted yet (never retried, or refused "
                    "again), with their body kept.",
                ),
                *_PAGE,
            ],
        )
    },
    "/api/rejected/retry": {
        "post": _admin(
            "Retry every kept rejected request a retry can run (at most 10,000)",
            _ok(
                {
                    "type": "object",
                    "required": ["accepted", "duplicate", "rejected", "skipped"],
                    "properties": {
                        "accepted": {"type": "integer"},
                        "duplicate": {"type": "integer"},
                        "rejected": {"type": "integer"},
                        "skipped": {
                            "type": "integer",
                            "description": "Not run: the source is gone.",
                        },
                    },
                }
            )
            | _errors(422, 503),
            parameters=[_query("source", _TEXT, "Only this source's.")],
        )
    },
    "/api/rejected/{rejected_id}": {
        "get": _admin(
            "A kept rejected request, with its headers and body",
            _ok(_ref("RejectedRequestDetail")) | _errors(404, 422),
            parameters=[_path("rejected_id", "Rejected request id.")],
        )
    },
    "/api/rejected/{rejected_id}/retry": {
        "post": _admin(
            "Run a kept rejected request through ingest again: the record says what it came to "
            "(outcome, event_ids, or retry_error when it is refused again)",
            _ok(_ref("RejectedRequest")) | _errors(404, 409, 422, 503),
            parameters=[_path("rejected_id", "Rejected request id.")],
        )
    },
}
