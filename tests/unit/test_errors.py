"""Domain errors and the one table that turns them into answers.

Every error is answered with the status, ``code`` and default message it had when the errors
carried their HTTP status themselves; and no module outside ``receiver/web/`` knows HTTP errors.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from receiver import errors
from receiver.errors import (
    AlreadyAccepted,
    ClientDisconnected,
    Conflict,
    FileLinkRefused,
    Forbidden,
    Invalid,
    InvalidCallback,
    InvalidJSON,
    KeptFileGone,
    Malformed,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    PhotohookError,
    Refused,
    RequestTimeout,
    ServiceUnavailable,
    Unauthorized,
    UnknownSource,
    UnsupportedMediaType,
)
from receiver.web.responses import ANSWERS, ERROR_HANDLERS, answer, for_status

RECEIVER = Path(inspect.getfile(errors)).parent

#: Each error class: its status, code and default message, as answered before the errors
#: were typed by cause (``ValidationFailed`` is now ``InvalidCallback``, or ``Invalid`` for
#: an operator's request; a bare ``HTTPError`` is now ``Refused``, or ``Malformed``).
BEFORE: dict[type[Refused], tuple[int, str, str]] = {
    Refused: (400, "bad_request", "The request could not be handled."),
    Malformed: (400, "bad_request", "The request is malformed."),
    ClientDisconnected: (
        400,
        "client_disconnected",
        "The client closed the connection before its body arrived.",
    ),
    InvalidJSON: (400, "invalid_json", "The request body is not valid JSON."),
    Unauthorized: (401, "unauthorized", "The request is not authenticated."),
    Forbidden: (403, "forbidden", "The client address is not allowed."),
    NotFound: (404, "not_found", "No such resource."),
    FileLinkRefused: (
        403,
        "link_refused",
        "This file link was altered or made up, or has expired.",
    ),
    KeptFileGone: (
        404,
        "not_found",
        "The kept file is gone (deleted by retention, or never kept).",
    ),
    UnknownSource: (404, "unknown_source", "No source of that name is configured."),
    MethodNotAllowed: (405, "method_not_allowed", "The method is not allowed on this path."),
    RequestTimeout: (408, "request_timeout", "The request took too long to arrive."),
    Conflict: (409, "conflict", "The request conflicts with the resource's current state."),
    AlreadyAccepted: (
        409,
        "conflict",
        "A kept rejected request was accepted already (or found a duplicate): it is not run\n"
        "    again, so that its record keeps what the retry that took it came to.",
    ),
    PayloadTooLarge: (
        413,
        "body_too_large",
        "The request body is larger than the configured limit.",
    ),
    UnsupportedMediaType: (
        415,
        "unsupported_media_type",
        "The request body must be JSON (Content-Type: application/json).",
    ),
    Invalid: (422, "invalid_payload", "The request is not valid."),
    InvalidCallback: (
        422,
        "invalid_payload",
        "The payload does not match the provider's documented schema.",
    ),
    ServiceUnavailable: (
        503,
        "unavailable",
        "photohook cannot store the request right now; retry later.",
    ),
}


def _refusals() -> list[type[Refused]]:
    return [
        cls
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, Refused) and cls.__module__ == errors.__name__
    ]


def test_every_refusal_is_listed_here_and_in_the_table() -> None:
    assert set(_refusals()) == set(BEFORE)
    assert set(ANSWERS) <= set(BEFORE)


@pytest.mark.parametrize("cls", list(BEFORE), ids=lambda cls: cls.__name__)
def test_each_error_is_answered_as_before(cls: type[Refused]) -> None:
    status, code, message = BEFORE[cls]
    found = answer(cls())
    assert (found.status_code, found.headers) == (status, None)
    assert found.body() == {"ok": False, "error": {"code": code, "message": message}}
    named = answer(cls("jobs[0].status must be one of 0, 1, 2", field="jobs[0].status"))
    assert named.body() == {
        "ok": False,
        "error": {
            "code": code,
            "message": "jobs[0].status must be one of 0, 1, 2",
            "field": "jobs[0].status",
        },
    }


def test_the_headers_an_error_asks_for() -> None:
    assert answer(MethodNotAllowed(allowed=("POST",))).headers == {"Allow": "POST"}
    assert answer(ServiceUnavailable(retry_after=5)).headers == {"Retry-After": "5"}
    assert answer(ServiceUnavailable("the database is not writable")).headers is None


def test_the_errors_know_no_http() -> None:
    for cls in vars(errors).values():
        if isinstance(cls, type) and issubclass(cls, PhotohookError):
            assert (cls.__doc__ or "").strip(), f"{cls.__name__} has no default message"
            assert not hasattr(cls, "status_code"), cls.__name__
            assert not hasattr(cls, "code"), cls.__name__
    assert isinstance(InvalidCallback(), Invalid)
    assert isinstance(UnknownSource(), NotFound)
    assert isinstance(AlreadyAccepted(), Conflict)


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (400, "bad_request", "The request could not be handled."),
        (404, "not_found", "No such resource."),
        (405, "method_not_allowed", "The method is not allowed on this path."),
        (422, "invalid_payload", "The payload does not match the provider's documented schema."),
        (500, "bad_request", "The request could not be handled."),  # no class: the status kept
    ],
)
def test_starlettes_own_errors_are_answered_as_before(status: int, code: str, message: str) -> None:
    found = for_status(status, {"Allow": "GET"})
    assert (found.status_code, found.headers) == (status, {"Allow": "GET"})
    assert found.body() == {"ok": False, "error": {"code": code, "message": message}}


async def test_the_exception_handlers_answer_with_the_table() -> None:
    async def refuse(request: Request) -> Response:
        raise InvalidCallback("status is required", field="status")

    async def unavailable(request: Request) -> Response:
        raise ServiceUnavailable(retry_after=5)

    app = Starlette(
        routes=[
            Route("/refuse", refuse, methods=["POST"]),
            Route("/unavailable", unavailable),
        ],
        exception_handlers=ERROR_HANDLERS,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://photohook.test") as client:
        refused = await client.post("/refuse")
        not_allowed = await client.get("/refuse")
        missing = await client.get("/nowhere")
        later = await client.get("/unavailable")
    assert refused.status_code == 422
    assert refused.json() == {
        "ok": False,
        "error": {"code": "invalid_payload", "message": "status is required", "field": "status"},
    }
    assert (not_allowed.status_code, not_allowed.headers["allow"]) == (405, "POST")
    assert not_allowed.json()["error"]["code"] == "method_not_allowed"
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    assert (later.status_code, later.headers["retry-after"]) == (503, "5")


def _outside_web() -> list[Path]:
    web = RECEIVER / "web"
    return [path for path in sorted(RECEIVER.rglob("*.py")) if web not in path.parents]


def _http_errors_named(tree: ast.AST) -> list[str]:
    """What in ``tree`` knows HTTP errors: Starlette's HTTPException, or the table of answers."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            names = {alias.name for alias in node.names}
            if node.module.startswith("starlette.exceptions") or "HTTPException" in names:
                found.append(f"line {node.lineno}: from {node.module} import {', '.join(names)}")
            if node.module == "receiver.web.responses" or (
                node.module == "receiver.web" and "responses" in names
            ):
                found.append(f"line {node.lineno}: from {node.module} import {', '.join(names)}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in ("starlette.exceptions", "receiver.web.responses"):
                    found.append(f"line {node.lineno}: import {alias.name}")
        elif isinstance(node, ast.Name | ast.Attribute):
            name = node.id if isinstance(node, ast.Name) else node.attr
            of_httpx = (  # the HTTP client's own errors
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "httpx"
            )
            if name in ("HTTPException", "HTTPError", "ValidationFailed") and not of_httpx:
                found.append(f"line {node.lineno}: {name}")
    return found


def test_nothing_outside_web_knows_http_errors() -> None:
    modules = _outside_web()
    assert RECEIVER / "errors.py" in modules and RECEIVER / "sources" / "_fields.py" in modules
    offenders = {
        str(path.relative_to(RECEIVER.parent)): found
        for path in modules
        if (found := _http_errors_named(ast.parse(path.read_text(), str(path))))
    }
    assert offenders == {}


def test_the_check_finds_what_it_looks_for() -> None:
    source = (
        "from starlette.exceptions import HTTPException\n"
        "from receiver.web.responses import answer\n"
        "raise HTTPException(422)\n"
    )
    assert len(_http_errors_named(ast.parse(source))) == 3
    client = "try:\n    pass\nexcept httpx.HTTPError:\n    pass\n"
    assert _http_errors_named(ast.parse(client)) == []


#: Exceptions that live beside their concept, not in receiver/errors.py: a handler's request to
#: be called again later, and a built-in handler's own error (the handlers are examples to copy).
ELSEWHERE = {"receiver/retry.py": {"Retry"}}


def test_the_exceptions_are_in_one_module() -> None:
    ours = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, PhotohookError)
    }
    found: dict[str, set[str]] = {}
    for path in sorted(RECEIVER.rglob("*.py")):
        if path == RECEIVER / "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ClassDef) or node.name.startswith("_"):
                continue
            bases = [base.id if isinstance(base, ast.Name) else "" for base in node.bases]
            if any(base.endswith(("Error", "Exception")) or base in ours for base in bases):
                found.setdefault(str(path.relative_to(RECEIVER.parent)), set()).add(node.name)
    assert found == ELSEWHERE
