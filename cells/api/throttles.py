"""API throttles: DRF's user and anonymous rate throttles, with their rates read from settings at each request
(IDP_API_THROTTLE_RATES) rather than once at import, so a deployment or a test can change them. "off" (or
empty) turns a scope off. Counts live in the Django cache (CACHES: Redis in production, shared by every
process)."""
from django.conf import settings
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle


class _SettingsRate:
    scope = ""

    def get_rate(self):
        rate = (getattr(settings, "IDP_API_THROTTLE_RATES", {}) or {}).get(self.scope)
        return None if not rate or str(rate).strip().lower() in ("off", "none", "0") else rate


class UserThrottle(_SettingsRate, UserRateThrottle):
    scope = "user"


class AnonThrottle(_SettingsRate, AnonRateThrottle):
    scope = "anon"
