"""Request and response shapes, for the OpenAPI document; validation is the forms' own."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

S = serializers.Serializer[Any]


class TokenRequestSerializer(S):
    grant_type = serializers.ChoiceField(choices=["client_credentials"])
    client_id = serializers.CharField(required=False, help_text="Or HTTP Basic.")
    client_secret = serializers.CharField(required=False, help_text="Or HTTP Basic.")


class TokenSerializer(S):
    access_token = serializers.CharField()
    token_type = serializers.ChoiceField(choices=["Bearer"])
    expires_in = serializers.IntegerField(help_text="Seconds.")
    scope = serializers.CharField(help_text="The client's scopes, space-separated.")


class _Identity(S):
    member_number = serializers.CharField(required=False, max_length=20, allow_blank=True)
    nir = serializers.CharField(
        required=False, max_length=30, allow_blank=True, help_text="If there is no member ID."
    )
    last_name = serializers.CharField(max_length=150)
    first_name = serializers.CharField(max_length=150)
    birth_date = serializers.CharField(help_text="YYYY-MM-DD or DD/MM/YYYY.")
    email = serializers.EmailField(max_length=254)
    language = serializers.ChoiceField(
        choices=["fr", "en"], required=False, help_text="Of the e-mails; default fr."
    )


class RegistrationSerializer(_Identity):
    secret_question = serializers.ChoiceField(
        choices=[
            "first_school",
            "childhood_street",
            "first_pet",
            "parents_meeting_city",
            "favourite_teacher",
        ]
    )
    secret_answer = serializers.CharField(min_length=2, max_length=100)
    accept_terms = serializers.BooleanField()


class RecoverySerializer(_Identity):
    email_lost = serializers.BooleanField(required=False)
    new_email = serializers.EmailField(required=False, allow_blank=True, max_length=254)
    secret_answer = serializers.CharField(required=False, allow_blank=True, max_length=100)


class EmailChangeSerializer(_Identity):
    new_email = serializers.EmailField(max_length=254)
    message = serializers.CharField(max_length=5000)


class ClosureSerializer(_Identity):
    message = serializers.CharField(max_length=5000)


class AccessProblemSerializer(_Identity):
    topic = serializers.ChoiceField(choices=["codes_never_received", "cannot_log_in"])
    message = serializers.CharField(max_length=5000)


class AcceptedSerializer(S):
    reference = serializers.CharField(help_text="The same whatever the registry holds.")
    status_url = serializers.CharField()


class StatusSerializer(S):
    reference = serializers.CharField()
    kind = serializers.ChoiceField(choices=["REG", "REC", "EML", "CLO", "ACC"])
    status = serializers.ChoiceField(
        choices=["in_review", "processed", "closed"],
        help_text="Neutral: never tells what the registry check found.",
    )
    received_at = serializers.DateTimeField()
    decided_at = serializers.DateTimeField(allow_null=True)


class EventSerializer(S):
    id = serializers.CharField(help_text="Unique and increasing; use it to drop duplicates.")
    type = serializers.ChoiceField(
        choices=[
            "request.received",
            "request.transition",
            "email.sent",
            "email.retrying",
            "email.failed",
        ]
    )
    occurred_at = serializers.DateTimeField()
    reference = serializers.CharField()
    member_number = serializers.CharField(
        allow_null=True, help_text="The registry member behind the request, if any."
    )
    request_kind = serializers.CharField()
    from_state = serializers.CharField(allow_blank=True)
    to_state = serializers.CharField(allow_blank=True)
    email_template = serializers.CharField(allow_blank=True)


class EventPageSerializer(S):
    events = EventSerializer(many=True)
    next_cursor = serializers.CharField(help_text="Pass as `after` to read on.")
    has_more = serializers.BooleanField()


class RegistryMemberSerializer(S):
    member_number = serializers.CharField(help_text="4-20 letters or digits; the upsert key.")
    nir = serializers.CharField(required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=150)
    first_name = serializers.CharField(max_length=150)
    birth_date = serializers.CharField(help_text="YYYY-MM-DD or DD/MM/YYYY.")
    email = serializers.CharField(required=False, allow_blank=True)
    coverages = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Coverage kinds; replaces all."
    )


class RegistryBatchSerializer(S):
    members = RegistryMemberSerializer(many=True)


class RejectedRowSerializer(S):
    index = serializers.IntegerField(help_text="Position of the member in the batch, from 0.")
    reason = serializers.CharField()


class RegistryReportSerializer(S):
    import_id = serializers.UUIDField(
        help_text="This batch's id, in the history of every request it re-checked."
    )
    imported = serializers.IntegerField()
    rejected = RejectedRowSerializer(many=True)
    rechecked = serializers.IntegerField(
        help_text="Open requests checked again because their member's identity fields or "
        "coverages changed."
    )


EVENT_TYPE_CHOICES = [
    "request.received",
    "request.transition",
    "email.sent",
    "email.retrying",
    "email.failed",
]


class WebhookCreateSerializer(S):
    url = serializers.URLField(max_length=500, help_text="Public http(s) URL (no private address).")
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPE_CHOICES), min_length=1
    )


class WebhookSerializer(S):
    id = serializers.IntegerField()
    url = serializers.CharField()
    event_types = serializers.ListField(child=serializers.CharField())
    created_at = serializers.DateTimeField()


class WebhookCreatedSerializer(WebhookSerializer):
    secret = serializers.CharField(help_text="The signing secret, shown this once.")


class WebhookDeliverySerializer(S):
    event_id = serializers.CharField()
    status = serializers.ChoiceField(choices=["pending", "sending", "delivered", "failed"])
    attempts = serializers.IntegerField()
    last_status_code = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    delivered_at = serializers.DateTimeField(allow_null=True)
