"""URLs: docs/interfaces.md lists the public ones; keep them stable."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path

from agentdesk import views as desk_views
from core import health
from portal import account_views as member_views
from portal import views as portal_views
from supervision import metrics as supervision_metrics
from supervision import views as supervision_views

urlpatterns = [
    path("", portal_views.home, name="home"),
    path("register/", portal_views.register, name="register"),
    path("recover/", portal_views.recover, name="recover"),
    path("support/", portal_views.support, name="support"),
    # Any path segment reaches the view, so malformed and unknown references share one 404.
    re_path(
        r"^requests/(?P<reference>[^/]{1,64})/$", portal_views.request_status, name="request_status"
    ),
    path("help/", portal_views.help_page, name="help"),
    path("healthz", health.healthz, name="healthz"),
    path("livez", health.livez, name="livez"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", supervision_metrics.metrics, name="metrics"),
    path("login/", member_views.login_view, name="login"),
    path("logout/", member_views.logout_view, name="logout"),
    path("account/", member_views.account_view, name="account"),
    path("account/activity/", member_views.activity_view, name="account_activity"),
    path("account/password/", member_views.password_change_view, name="password_change"),
    path("account/email/", member_views.email_change_view, name="email_change"),
    path(
        "account/email/cancel/",
        member_views.email_change_cancel_view,
        name="email_change_cancel",
    ),
    # The token travels in the path (e-mail links cannot POST); the page then asks for a POST.
    re_path(
        r"^account/email/confirm/(?P<token>[A-Za-z0-9_-]{1,100})/$",
        member_views.email_change_confirm_view,
        name="email_change_confirm",
    ),
    re_path(
        r"^account/not-me/(?P<token>[A-Za-z0-9_-]{1,100})/$",
        member_views.not_me_view,
        name="not_me",
    ),
    path("desk/login/", desk_views.desk_login, name="desk_login"),
    path("desk/logout/", desk_views.desk_logout, name="desk_logout"),
    path("desk/second-factor/", desk_views.desk_second_factor, name="desk_second_factor"),
    path("desk/", desk_views.queue, name="desk_queue"),
    # Before the reference pattern, which would otherwise take "new" for a reference.
    path("desk/tickets/new/", desk_views.ticket_new, name="desk_ticket_new"),
    path("desk/members/", desk_views.members_search, name="desk_members"),
    re_path(
        r"^desk/members/(?P<member_number>[^/]{1,64})/$",
        desk_views.member_detail,
        name="desk_member",
    ),
    re_path(
        r"^desk/members/(?P<member_number>[^/]{1,64})/reveal/$",
        desk_views.member_reveal,
        name="desk_member_reveal",
    ),
    re_path(
        r"^desk/tickets/(?P<reference>[^/]{1,64})/$", desk_views.ticket_detail, name="desk_ticket"
    ),
    re_path(
        r"^desk/tickets/(?P<reference>[^/]{1,64})/reveal/$",
        desk_views.ticket_reveal,
        name="desk_ticket_reveal",
    ),
    re_path(
        r"^desk/tickets/(?P<reference>[^/]{1,64})/(?P<action>claim|release|confirm|reject|flag-mismatch|note|reissue-codes|approve|send-back)/$",
        desk_views.ticket_action,
        name="desk_ticket_action",
    ),
    path("desk/supervisor/", supervision_views.dashboard, name="supervision"),
    path("desk/supervisor/queue/", supervision_views.queue, name="supervision_queue"),
    path("desk/supervisor/reassign/", supervision_views.reassign, name="supervision_reassign"),
    path(
        "desk/supervisor/release-stale/",
        supervision_views.release_stale,
        name="supervision_release_stale",
    ),
    path("desk/supervisor/audit/", supervision_views.audit, name="supervision_audit"),
    path("desk/supervisor/staff/", supervision_views.staff, name="supervision_staff"),
    path(
        "desk/supervisor/staff/<int:account_id>/reset-second-factor/",
        supervision_views.second_factor_reset,
        name="supervision_second_factor_reset",
    ),
    path(
        "desk/supervisor/export/queue.csv",
        supervision_views.export_queue,
        name="supervision_export_queue",
    ),
    path(
        "desk/supervisor/export/audit.csv",
        supervision_views.export_audit,
        name="supervision_export_audit",
    ),
    path(
        "desk/supervisor/export/access-journal.csv",
        supervision_views.export_access_journal,
        name="supervision_export_access_journal",
    ),
    path("api/v1/", include("api.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]

if settings.DEBUG:
    urlpatterns.append(path("dev/outbox/", portal_views.dev_outbox, name="dev_outbox"))
