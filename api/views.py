"""The machine interface, version 1: thin views over the same services the pages use."""

from __future__ import annotations

import abc
import base64
import binascii
import logging
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, ClassVar

from django import forms
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework import status
from rest_framework.parsers import FormParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api import serializers as s
from api.auth import api_client_of
from api.clients import client_authenticate, token_issue
from api.models import ApiClient, Scope
from api.problems import (
    PROBLEM_BASE,
    PROBLEM_CONTENT_TYPE,
    TITLES,
    ProblemSerializer,
    problem,
)
from core.logging import current_request_id
from members.services.registry import (
    CSV_HEADER,
    MemberRow,
    RowError,
    parse_member_row,
)
from members.throttling import client_ip, rate_exceeded
from tickets.models import TicketEvent, TicketKind
from workflows.models import WebhookSubscription
from workflows.request_forms import RecoveryForm, RegistrationForm, SupportForm
from workflows.services.events import EVENT_PUBLIC_FIELDS, PUBLIC_EVENT_KINDS, event_public
from workflows.services.intake import RequestData
from workflows.services.public_status import public_status_of
from workflows.services.registry_recheck import registry_import
from workflows.services.submissions import public_request_submit
from workflows.services.webhooks import WebhookError, webhook_subscribe

audit_log = logging.getLogger("guichet.api")

# ASCII digits only: str.isdigit() also takes "²", which int() refuses (found by schemathesis).
DIGITS_RE = re.compile(r"[0-9]{1,18}")
IDEMPOTENCY_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
TOKEN_FAILURES_PER_IP_PER_MINUTE = 30
EVENTS_PAGE_MAX = 500

PROBLEMS = {
    code: (OpenApiResponse(ProblemSerializer, description=text), PROBLEM_CONTENT_TYPE)
    for code, text in {
        400: "Invalid fields (problem+json, per-field `errors`).",
        401: "Missing, invalid or expired token.",
        403: "The token lacks the scope.",
        404: "Not found.",
        406: "Not acceptable.",
        415: "Unsupported media type.",
        429: "Too many requests; see Retry-After.",
    }.items()
}


def _problems(*codes: int) -> dict[tuple[int, str], OpenApiResponse]:
    """The documented error answers of an operation, each as application/problem+json."""
    return {(code, PROBLEMS[code][1]): PROBLEMS[code][0] for code in codes}


class ApiView(APIView):
    """Every call is audited with the client id (log `guichet.api`)."""

    required_scope: ClassVar[str | None] = None

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        client = api_client_of(request) or getattr(self, "issued_to", None)
        audit_log.info(
            "api call client=%s method=%s path=%s status=%s",
            client.client_id if isinstance(client, ApiClient) else "-",
            request.method,
            request.path,
            response.status_code,
        )
        return super().finalize_response(request, response, *args, **kwargs)


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, encoded = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ("", "")
    client_id, _, secret = decoded.partition(":")
    return client_id, secret


class TokenView(ApiView):
    """OAuth 2.0 client credentials (RFC 6749 §4.4)."""

    authentication_classes = []
    throttle_classes = []
    parser_classes = [FormParser]

    @extend_schema(
        operation_id="token_create",
        summary="Obtain an access token (client credentials)",
        request={"application/x-www-form-urlencoded": s.TokenRequestSerializer},
        responses={
            200: s.TokenSerializer,
            **_problems(400, 401, 406, 415, 429),
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        data = request.data
        if data.get("grant_type") != "client_credentials":
            response = problem("unsupported-grant-type", 400)
            response.data["error"] = "unsupported_grant_type"
            return response
        given = _basic_credentials(request) or (
            str(data.get("client_id", "")),
            str(data.get("client_secret", "")),
        )
        ip = client_ip(request._request)
        if rate_exceeded(
            scope="api-token-ip", value=ip, limit=TOKEN_FAILURES_PER_IP_PER_MINUTE, window=60
        ):
            return problem("rate-limited", 429, headers={"Retry-After": "60"})
        client = client_authenticate(client_id=given[0][:64], client_secret=given[1][:200])
        if client is None:
            audit_log.warning("api token refused ip=%s", ip)
            response = problem(
                "invalid-client", 401, headers={"WWW-Authenticate": 'Basic realm="guichet"'}
            )
            response.data["error"] = "invalid_client"
            return response
        self.issued_to = client
        token, lifetime = token_issue(client=client)
        body = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": " ".join(client.scopes),
        }
        return Response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def _form_data(payload: Any) -> dict[str, Any] | None:
    """A JSON object of scalars, as a form's data; anything else is None."""
    if not isinstance(payload, dict):
        return None
    data: dict[str, Any] = {}
    for key, value in payload.items():
        if isinstance(value, (dict, list)):
            return None
        data[str(key)] = "" if value is None else value
    return data


def _form_errors(form: forms.Form) -> dict[str, list[str]]:
    return {
        ("non_field_errors" if field == "__all__" else field): [str(m) for m in messages]
        for field, messages in form.errors.items()
    }


class _SubmitView(ApiView, abc.ABC):
    """Validate with the page's own form, then the page's own submission path."""

    required_scope = Scope.REQUESTS_WRITE.value
    form_class: ClassVar[type[forms.Form]]
    fixed: ClassVar[dict[str, str]] = {}

    @abc.abstractmethod
    def request_data(self, cleaned: dict[str, Any], language: str) -> RequestData:
        """The submission this kind of request makes of the form's cleaned data."""

    def post(self, request: Request) -> Response:
        data = _form_data(request.data)
        if data is None:
            return problem("invalid-request", 400, detail="The body must be a JSON object.")
        language = str(data.pop("language", "") or settings.LANGUAGE_CODE)
        if language not in ("fr", "en"):
            return problem("invalid-request", 400, errors={"language": ["fr or en."]})
        data.pop("form_token", None)
        data.update(self.fixed)
        form = self.form_class(data)
        if not form.is_valid():
            return problem("invalid-request", 400, errors=_form_errors(form))
        key = request.META.get("HTTP_IDEMPOTENCY_KEY", "")
        client = api_client_of(request)
        if client is None:
            return problem("unauthenticated", 401)
        token = f"api:{client.client_id}:{key}" if IDEMPOTENCY_KEY_RE.fullmatch(key) else ""
        reference = public_request_submit(
            data=self.request_data(form.cleaned_data, language),
            token=token,
            request_id=current_request_id(),
        )
        if reference is None:
            return problem("rate-limited", 429, headers={"Retry-After": "3600"})
        url = reverse("api:request_status", kwargs={"reference": reference})
        return Response(
            {"reference": reference, "status_url": url}, status=status.HTTP_202_ACCEPTED
        )


def _submit_schema(serializer: type[Any], summary: str) -> Callable[[Any], Any]:
    return extend_schema(
        summary=summary,
        request=serializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                required=False,
                description="8-64 of [A-Za-z0-9_-]: a repeat with the same key gives the same "
                "reference and does nothing more.",
            )
        ],
        responses={
            202: s.AcceptedSerializer,
            **_problems(400, 401, 403, 406, 415, 429),
        },
    )


def _identity(cleaned: dict[str, Any], language: str, **specific: Any) -> RequestData:
    return RequestData.from_identity(cleaned, language=language, **specific)


class RegistrationView(_SubmitView):
    form_class = RegistrationForm

    def request_data(self, cleaned: dict[str, Any], language: str) -> RequestData:
        return _identity(
            cleaned,
            language,
            kind=TicketKind.REGISTRATION,
            secret_question=cleaned["secret_question"],
            secret_answer=cleaned["secret_answer"],
        )

    @_submit_schema(s.RegistrationSerializer, "Activate my account")
    def post(self, request: Request) -> Response:
        return super().post(request)


class RecoveryView(_SubmitView):
    form_class = RecoveryForm

    def request_data(self, cleaned: dict[str, Any], language: str) -> RequestData:
        return _identity(
            cleaned,
            language,
            kind=TicketKind.RECOVERY,
            requested_email=cleaned["new_email"],
            secret_answer=cleaned["secret_answer"],
        )

    @_submit_schema(s.RecoverySerializer, "Forgotten codes")
    def post(self, request: Request) -> Response:
        return super().post(request)


class _SupportView(_SubmitView):
    form_class = SupportForm

    def request_data(self, cleaned: dict[str, Any], language: str) -> RequestData:
        return _identity(
            cleaned,
            language,
            kind=cleaned["kind"],
            requested_email=cleaned["new_email"],
            message=cleaned["message"],
            topic=cleaned["topic"],
        )


class EmailChangeView(_SupportView):
    fixed: ClassVar[dict[str, str]] = {"topic": "email_changed"}

    @_submit_schema(s.EmailChangeSerializer, "My e-mail changed")
    def post(self, request: Request) -> Response:
        return super().post(request)


class ClosureView(_SupportView):
    fixed: ClassVar[dict[str, str]] = {"topic": "close_account"}

    @_submit_schema(s.ClosureSerializer, "Close my account")
    def post(self, request: Request) -> Response:
        return super().post(request)


class AccessProblemView(_SupportView):
    @_submit_schema(s.AccessProblemSerializer, "I never received my codes / cannot log in")
    def post(self, request: Request) -> Response:
        data = _form_data(request.data)
        if data is not None and data.get("topic") not in ("codes_never_received", "cannot_log_in"):
            return problem("invalid-request", 400, errors={"topic": ["Choose a listed topic."]})
        return super().post(request)


class RequestStatusView(ApiView):
    required_scope = Scope.REQUESTS_READ.value

    @extend_schema(
        summary="A request's public status",
        responses={200: s.StatusSerializer, **_problems(401, 403, 404, 406, 429)},
    )
    def get(self, request: Request, reference: str) -> Response:
        found = public_status_of(reference)
        if found is None:
            return problem("not-found", 404)
        return Response(
            {
                "reference": found.reference,
                "kind": found.ticket.kind,
                "status": found.neutral_state,
                "received_at": found.received_at.isoformat(),
                "decided_at": found.ticket.decided_at.isoformat()
                if found.ticket.decided_at
                else None,
            }
        )


def _registry_rows(items: list[Any]) -> Iterator[tuple[int, MemberRow | RowError]]:
    """The batch's items as import_members' rows; the line number is the item's index.

    Written for a thousand items per call (no comprehension per item: each costs a frame).
    """
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            yield index, RowError("each member must be an object")
            continue
        coverages = item.get("coverages", [])
        if isinstance(coverages, list):
            for kind in coverages:
                if not isinstance(kind, str):
                    break
            else:
                coverages = ";".join(coverages)
        record = {
            "member_number": item.get("member_number", ""),
            "nir": item.get("nir", ""),
            "last_name": item.get("last_name", ""),
            "first_name": item.get("first_name", ""),
            "birth_date": item.get("birth_date", ""),
            "email": item.get("email", ""),
            "coverages": coverages,
        }
        for value in record.values():
            if not isinstance(value, str):
                bad = [name for name in CSV_HEADER if not isinstance(record[name], str)]
                yield index, RowError(f"{', '.join(bad)} must be text")
                break
        else:
            try:
                yield index, parse_member_row(index, record)
            except RowError as exc:
                yield index, exc


class RegistryMembersView(ApiView):
    required_scope = Scope.REGISTRY_WRITE.value

    @extend_schema(
        summary="Upsert registry members in one batch (idempotent by member ID)",
        description="The rules and per-row errors of `manage.py import_members`: valid rows are "
        "written in batches, each rejected row is reported by its index; sending a batch again "
        "changes nothing more. At most GUICHET_API_REGISTRY_BATCH_MAX members (default 1000). "
        "The open requests of members whose identity fields or coverages changed are checked "
        "again against the registry (as `import_members` does); `import_id` names the batch in "
        "their history.",
        request=s.RegistryBatchSerializer,
        responses={200: s.RegistryReportSerializer, **_problems(400, 401, 403, 406, 415, 429)},
    )
    def post(self, request: Request) -> Response:
        items = request.data.get("members") if isinstance(request.data, dict) else None
        if not isinstance(items, list) or not items:
            return problem("invalid-request", 400, errors={"members": ["A non-empty list."]})
        most = settings.GUICHET_API_REGISTRY_BATCH_MAX
        if len(items) > most:
            return problem("invalid-request", 400, errors={"members": [f"At most {most}."]})
        client = api_client_of(request)
        run = registry_import(
            rows=_registry_rows(items),
            source=f"api:{client.client_id}" if client is not None else "api",
        )
        report = run.report
        return Response(
            {
                "import_id": run.import_id,
                "imported": report.imported,
                "rejected": [{"index": i, "reason": reason} for i, reason in report.rejected],
                "rechecked": run.recheck.rechecked,
            }
        )


class EventsView(ApiView):
    required_scope = Scope.EVENTS_READ.value

    @extend_schema(
        summary="Events feed: request transitions and e-mail outcomes, oldest first",
        parameters=[
            OpenApiParameter("after", str, description="The `next_cursor` of the previous page."),
            OpenApiParameter("limit", int, description=f"1-{EVENTS_PAGE_MAX}, default 100."),
        ],
        responses={
            200: s.EventPageSerializer,
            **_problems(400, 401, 403, 406, 429),
        },
    )
    def get(self, request: Request) -> Response:
        after_text = request.query_params.get("after", "0") or "0"
        limit_text = request.query_params.get("limit", "100") or "100"
        if not DIGITS_RE.fullmatch(after_text):
            return problem("invalid-request", 400, errors={"after": ["A cursor from a page."]})
        if not DIGITS_RE.fullmatch(limit_text) or not 1 <= int(limit_text) <= EVENTS_PAGE_MAX:
            return problem("invalid-request", 400, errors={"limit": [f"1 to {EVENTS_PAGE_MAX}."]})
        after, limit = int(after_text), int(limit_text)
        settled = timezone.now() - timedelta(seconds=settings.GUICHET_API_EVENTS_SETTLE_SECONDS)
        rows = list(
            TicketEvent.objects.filter(
                pk__gt=after, kind__in=PUBLIC_EVENT_KINDS, created_at__lte=settled
            )
            .select_related("ticket__member")
            .only(*EVENT_PUBLIC_FIELDS)
            .order_by("pk")[: limit + 1]
        )
        events = [event_public(e) for e in rows[:limit]]
        return Response(
            {
                "events": events,
                "next_cursor": events[-1]["id"] if events else str(after),
                "has_more": len(rows) > limit,
            }
        )


def _webhook(subscription: WebhookSubscription) -> dict[str, Any]:
    return {
        "id": subscription.pk,
        "url": subscription.url,
        "event_types": subscription.event_types,
        "created_at": subscription.created_at.isoformat(),
    }


class WebhooksView(ApiView):
    """The calling client's webhook subscriptions."""

    required_scope = Scope.EVENTS_READ.value

    @extend_schema(
        summary="Subscribe a URL to event types (signed POSTs; the secret is shown once)",
        request=s.WebhookCreateSerializer,
        responses={201: s.WebhookCreatedSerializer, **_problems(400, 401, 403, 406, 415, 429)},
    )
    def post(self, request: Request) -> Response:
        client = api_client_of(request)
        if client is None:
            return problem("unauthenticated", 401)
        serializer = s.WebhookCreateSerializer(data=request.data)
        if not serializer.is_valid():
            return problem("invalid-request", 400, errors=serializer.errors)
        try:
            subscription, secret = webhook_subscribe(
                client_id=client.client_id,
                url=serializer.validated_data["url"],
                event_types=list(serializer.validated_data["event_types"]),
            )
        except WebhookError as exc:
            return problem("invalid-request", 400, errors={"url": [str(exc)]})
        return Response({**_webhook(subscription), "secret": secret}, status=201)

    @extend_schema(
        summary="The client's webhook subscriptions",
        responses={200: s.WebhookSerializer(many=True), **_problems(401, 403, 406, 429)},
    )
    def get(self, request: Request) -> Response:
        client = api_client_of(request)
        if client is None:
            return problem("unauthenticated", 401)
        mine = WebhookSubscription.objects.filter(client_id=client.client_id, active=True)
        return Response([_webhook(w) for w in mine.order_by("pk")])


def _own_subscription(request: Request, subscription_id: str) -> WebhookSubscription | None:
    client = api_client_of(request)
    if client is None or not DIGITS_RE.fullmatch(subscription_id):
        return None
    return WebhookSubscription.objects.filter(
        pk=int(subscription_id), client_id=client.client_id, active=True
    ).first()


class WebhookView(ApiView):
    required_scope = Scope.EVENTS_READ.value

    @extend_schema(
        summary="Stop a webhook subscription",
        responses={204: None, **_problems(401, 403, 404, 406, 429)},
    )
    def delete(self, request: Request, subscription_id: str) -> Response:
        subscription = _own_subscription(request, subscription_id)
        if subscription is None:
            return problem("not-found", 404)
        subscription.active = False
        subscription.save(update_fields=["active"])
        return Response(status=204)


class WebhookDeliveriesView(ApiView):
    required_scope = Scope.EVENTS_READ.value

    @extend_schema(
        summary="The delivery log of a subscription, newest first (last 100)",
        responses={
            200: s.WebhookDeliverySerializer(many=True),
            **_problems(401, 403, 404, 406, 429),
        },
    )
    def get(self, request: Request, subscription_id: str) -> Response:
        subscription = _own_subscription(request, subscription_id)
        if subscription is None:
            return problem("not-found", 404)
        rows = subscription.deliveries.order_by("-pk")[:100]
        return Response(
            [
                {
                    "event_id": str(d.event_id),
                    "status": d.status,
                    "attempts": d.attempts,
                    "last_status_code": d.last_status_code,
                    "last_error": d.last_error,
                    "created_at": d.created_at.isoformat(),
                    "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
                }
                for d in rows
            ]
        )


class DocsView(SpectacularSwaggerSplitView):
    """Swagger UI from local files; no inline script or style (the site's CSP stands)."""

    template_name = "api/docs.html"
    url_name = "api:schema"
    authentication_classes = []
    permission_classes = []
    throttle_classes = []


def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Unknown paths under /api/ answer a problem document, not the HTML 404 page."""
    body = {"type": PROBLEM_BASE + "not-found", "title": TITLES["not-found"], "status": 404}
    return JsonResponse(body, status=404, content_type=PROBLEM_CONTENT_TYPE)
