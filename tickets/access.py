"""Who may open a desk page: one decorator, parameterised by the permission the page needs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.urls import reverse

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
