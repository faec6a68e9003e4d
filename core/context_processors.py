"""Values every template needs."""

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def guichet(request: HttpRequest) -> dict[str, Any]:
    return {"ORG_NAME": settings.GUICHET_ORG_NAME, "DEBUG_OUTBOX": settings.DEBUG}
