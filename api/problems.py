"""Errors as RFC 9457 problem details (application/problem+json) with stable `type` URIs."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "https://guichet.example.org/problems/"

_TYPES: dict[type[exceptions.APIException], str] = {
    exceptions.ValidationError: "invalid-request",
    exceptions.ParseError: "malformed-body",
    exceptions.NotAuthenticated: "unauthenticated",
    exceptions.AuthenticationFailed: "unauthenticated",
    exceptions.PermissionDenied: "insufficient-scope",
    exceptions.NotFound: "not-found",
    exceptions.MethodNotAllowed: "method-not-allowed",
    exceptions.NotAcceptable: "not-acceptable",
    exceptions.UnsupportedMediaType: "unsupported-media-type",
    exceptions.Throttled: "rate-limited",
}

TITLES = {
    "invalid-request": "The request has invalid fields.",
    "malformed-body": "The body is not valid JSON.",
    "unauthenticated": "Authentication is required.",
    "insufficient-scope": "The token lacks the scope for this operation.",
    "not-found": "Not found.",
    "method-not-allowed": "Method not allowed.",
    "not-acceptable": "Not acceptable.",
    "unsupported-media-type": "Unsupported media type.",
    "rate-limited": "Too many requests.",
    "invalid-client": "The client credentials are wrong.",
    "unsupported-grant-type": "Only grant_type=client_credentials is supported.",
}


def problem(
    code: str, http_status: int, *, detail: str = "", errors: Any = None, headers: Any = None
) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code,
        "title": TITLES.get(code, code),
        "status": http_status,
    }
    if detail:
        body["detail"] = detail
    if errors is not None:
        body["errors"] = errors
    return Response(body, status=http_status, headers=headers, content_type=PROBLEM_CONTENT_TYPE)


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every DRF error becomes a problem document; anything else stays a 500 (and is a bug)."""
    response = exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    code = next((v for k, v in _TYPES.items() if isinstance(exc, k)), "error")
    errors = response.data if isinstance(exc, exceptions.ValidationError) else None
    detail = "" if errors is not None else str(getattr(exc, "detail", ""))
    headers = {
        k: v for k, v in response.items() if k in ("Retry-After", "WWW-Authenticate", "Allow")
    }
    if isinstance(exc, exceptions.Throttled) and "Retry-After" not in headers:
        headers["Retry-After"] = "60"
    return problem(code, response.status_code, detail=detail, errors=errors, headers=headers)


class ProblemSerializer(serializers.Serializer[Any]):
    """The schema of every error body (RFC 9457)."""

    type = serializers.URLField(help_text="A stable URI naming the kind of problem.")
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField(required=False)
    # A declared field named like Serializer.errors: DRF takes it out of the class at runtime.
    errors = serializers.DictField(  # type: ignore[assignment]
        required=False,
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Per field, the messages (the same as the forms show); `non_field_errors` "
        "for the request as a whole.",
    )


__all__ = [
    "PROBLEM_CONTENT_TYPE",
    "ProblemSerializer",
    "problem",
    "problem_exception_handler",
]
