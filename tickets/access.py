"""Who may open a desk page: one decorator, parameterised by the permission the page needs;
one more for the actions that need a fresh second factor (step-up)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from members.forms import SecondFactorForm
from members.models import Account, SecondFactorEventKind
from members.second_factor import (
    confirmed_device,
    second_factor_check,
    second_factor_event,
    session_step_up,
    step_up_fresh,
)
from members.throttling import client_ip

security_log = logging.getLogger("guichet.security")


def desk_permission_required(
    permission: str,
) -> Callable[[Callable[..., HttpResponseBase]], Callable[..., HttpResponseBase]]:
    """Desk pages: anonymous users go to the desk login, anyone without `permission` gets 403."""

    def decorator(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            user = request.user
            if not user.is_authenticated:
                return redirect(f"{reverse('desk_login')}?{urlencode({'next': request.path})}")
            # Least privilege: staff outside the desk groups see no member data. The permission
            # lookup is cached on the user for the rest of the request.
            if not (user.is_active and user.is_staff and user.has_perm(permission)):
                security_log.warning("desk access refused user=%s path=%s", user.pk, request.path)
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


# The agents' pages (the supervisors' pages use `tickets.view_supervision`).


# The agents' pages; the supervisors' pages need `tickets.view_supervision`.
staff_required = desk_permission_required("tickets.view_ticket")
supervisor_required = desk_permission_required("tickets.view_supervision")


STEP_UP_FIELD = "otp_token"


def step_up_prompt(request: HttpRequest) -> HttpResponseBase | None:
    """None when the action may go ahead now; otherwise the page asking for a fresh code.

    Sensitive POSTs need a second factor proven within GUICHET_STEP_UP_SECONDS (§41). The
    prompt carries the submitted fields along as hidden inputs; with a right code this returns
    None with `request.POST` holding the same data as the first submission (the code removed).
    """
    if request.method != "POST" or step_up_fresh(request):
        return None
    account: Account = request.user  # type: ignore[assignment]
    device = confirmed_device(account)
    form = SecondFactorForm(request.POST if STEP_UP_FIELD in request.POST else None)
    if device is not None and form.is_valid():
        result = second_factor_check(
            request=request, account=account, device=device, token=form.cleaned_data[STEP_UP_FIELD]
        )
        if result.ok:
            session_step_up(request)
            second_factor_event(
                account=account, kind=SecondFactorEventKind.STEP_UP, ip=client_ip(request)
            )
            data = request.POST.copy()
            data.pop(STEP_UP_FIELD, None)
            request.POST = data  # type: ignore[assignment]
            return None
        form.add_error(
            STEP_UP_FIELD,
            _("Too many wrong codes: wait a few minutes and try again.")
            if result.locked
            else _("This code is not valid. Type the code your app shows now."),
        )
    kept = [
        (name, value)
        for name, values in request.POST.lists()
        if name not in ("csrfmiddlewaretoken", STEP_UP_FIELD)
        for value in values
    ]
    back = request.META.get("HTTP_REFERER", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse("desk_queue")
    return render(
        request,
        "second_factor/step_up.html",
        {
            "form": form,
            "kept": kept,
            "minutes": max(1, settings.GUICHET_STEP_UP_SECONDS // 60),
            "back_url": back,
        },
    )


def step_up_required(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """The view's POSTs go through `step_up_prompt` first; put it under the access decorator,
    so that only allowed staff ever see the prompt."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        prompt = step_up_prompt(request)
        return prompt if prompt is not None else view(request, *args, **kwargs)

    return wrapper
