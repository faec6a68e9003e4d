"""The floor: one keyset query over the same rows as the default queue, and a plain template."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.template import engines

from tickets.models import OPEN_STATES, Ticket

TEMPLATE = engines["django"].from_string(
    """<!DOCTYPE html><html><head><title>floor</title></head><body><table>
<thead><tr><th>Reference</th><th>Kind</th><th>State</th><th>Channel</th><th>Last name</th>
<th>First name</th><th>Check</th><th>Assignee</th><th>Received</th></tr></thead><tbody>
{% for t in rows %}<tr><td><a href="/desk/tickets/{{ t.reference }}/">{{ t.reference }}</a></td>
<td>{{ t.kind }}</td><td>{{ t.state }}</td><td>{{ t.channel }}</td>
<td>{{ t.submitted_last_name }}</td><td>{{ t.submitted_first_name }}</td>
<td>{{ t.match_result }}</td><td>{{ t.assignee.username|default:"-" }}</td>
<td>{{ t.created_at|date:"d/m/Y H:i" }}</td></tr>
{% endfor %}</tbody></table>
{% if next %}<a href="?after={{ next }}">next</a>{% endif %}</body></html>"""
)


@login_required
def floor(request: HttpRequest) -> HttpResponse:
    """A bare keyset-paginated list: the fastest a Django page of these rows can be."""
    rows = list(
        Ticket.objects.filter(state__in=OPEN_STATES)
        .select_related("assignee")
        .only(
            "reference",
            "kind",
            "state",
            "channel",
            "submitted_last_name",
            "submitted_first_name",
            "match_result",
            "created_at",
            "assignee__username",
        )
        .order_by("created_at", "id")[:51]
    )
    last = rows[49] if len(rows) > 50 else None
    context = {
        "rows": rows[:50],
        "next": f"{last.created_at.isoformat()}~{last.pk}" if last else "",
    }
    return HttpResponse(TEMPLATE.render(context, request))
