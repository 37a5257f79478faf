"""The Celery app. Tasks live in each app's tasks.py and call the domain services."""
import os

from celery import Celery

from . import broker  # noqa: F401  registers the embedded default's "idpfs://" transport
from . import logs  # noqa: F401  connects the signals that carry the request id into tasks and set up worker logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("idp_multicloud")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
