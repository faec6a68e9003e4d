from django.apps import AppConfig


class SupervisionConfig(AppConfig):
    """Supervisors' views and the daily rollups behind them (app label `supervision`)."""

    name = "supervision"
    label = "supervision"
    default_auto_field = "django.db.models.BigAutoField"
