"""Errors the provider adapters raise; the runbook turns them into step outcomes."""


class ProviderError(Exception):
    """Permanent: retrying will not help (missing zone or record, bad credentials, refused)."""


class TransientProviderError(ProviderError):
    """Worth retrying with backoff (timeout, throttling, 5xx)."""


class Unreachable(TransientProviderError):
    """The provider or the side cannot be reached (a region is down)."""
