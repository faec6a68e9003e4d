"""Guichet's Django project: configuration only (settings, URLs, Celery app, WSGI)."""

from desk.celery import app as celery_app

__all__ = ("celery_app",)
