"""/api/v1/: docs/interfaces.md "API" lists these; a new version gets a new prefix."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularJSONAPIView

from api import views

app_name = "api"


class SchemaView(SpectacularJSONAPIView):
    authentication_classes = []
    permission_classes = []
    throttle_classes = []


urlpatterns = [
    path("openapi.json", SchemaView.as_view(), name="schema"),
    path("docs/", views.DocsView.as_view(), name="docs"),
    path("token", views.TokenView.as_view(), name="token"),
    path("requests/registration", views.RegistrationView.as_view(), name="submit_registration"),
    path("requests/recovery", views.RecoveryView.as_view(), name="submit_recovery"),
    path("requests/email-change", views.EmailChangeView.as_view(), name="submit_email_change"),
    path("requests/closure", views.ClosureView.as_view(), name="submit_closure"),
    path(
        "requests/access-problem",
        views.AccessProblemView.as_view(),
        name="submit_access_problem",
    ),
    re_path(
        r"^requests/(?P<reference>[^/]{1,64})$",
        views.RequestStatusView.as_view(),
        name="request_status",
    ),
    path("events", views.EventsView.as_view(), name="events"),
    path("webhooks", views.WebhooksView.as_view(), name="webhooks"),
    re_path(
        r"^webhooks/(?P<subscription_id>[^/]{1,64})$", views.WebhookView.as_view(), name="webhook"
    ),
    re_path(
        r"^webhooks/(?P<subscription_id>[^/]{1,64})/deliveries$",
        views.WebhookDeliveriesView.as_view(),
        name="webhook_deliveries",
    ),
    path("registry/members", views.RegistryMembersView.as_view(), name="registry_members"),
    re_path(r"^.*$", views.not_found, name="not_found"),
]
