"""URLs: CONTRACT.md lists the public ones; keep them stable."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path

from members import views as member_views
from tickets import views as desk_views
from workflows import views as portal_views

urlpatterns = [
    path("", portal_views.home, name="home"),
    path("register/", portal_views.register, name="register"),
    # Any path segment reaches the view, so malformed and unknown references share one 404.
    re_path(
        r"^requests/(?P<reference>[^/]{1,64})/$", portal_views.request_status, name="request_status"
    ),
    path("help/", portal_views.help_page, name="help"),
    path("healthz", portal_views.healthz, name="healthz"),
    path("login/", member_views.login_view, name="login"),
    path("logout/", member_views.logout_view, name="logout"),
    path("account/", member_views.account_view, name="account"),
    path("account/password/", member_views.password_change_view, name="password_change"),
    path("desk/login/", desk_views.desk_login, name="desk_login"),
    path("desk/logout/", desk_views.desk_logout, name="desk_logout"),
    path("desk/", desk_views.queue, name="desk_queue"),
    re_path(
        r"^desk/tickets/(?P<reference>[^/]{1,64})/$", desk_views.ticket_detail, name="desk_ticket"
    ),
    re_path(
        r"^desk/tickets/(?P<reference>[^/]{1,64})/(?P<action>claim|release|confirm|reject|flag-mismatch|note)/$",
        desk_views.ticket_action,
        name="desk_ticket_action",
    ),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]

if settings.DEBUG:
    urlpatterns.append(path("dev/outbox/", portal_views.dev_outbox, name="dev_outbox"))
