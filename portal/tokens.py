"""A user's own API token: issue (or replace) it and describe it without its key.

The portal's profile page, the admin and `manage.py demo_data` call these. The key is shown once, in the answer
to the request that made it; afterwards only its last four characters are (like the admin, never the key).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from rest_framework.authtoken.models import Token

from cells.audit import record_event


@dataclass(frozen=True)
class TokenInfo:
    created: datetime
    hint: str  # "…a1b2": enough to tell two tokens apart, useless to an attacker


def token_info(user) -> TokenInfo | None:
    token = Token.objects.filter(user=user).only("key", "created").first()
    return TokenInfo(token.created, f"…{token.key[-4:]}") if token else None


def issue_token(user) -> str:
    """A new key for `user`, replacing the old one (which stops working at once). Audited without the key."""
    with transaction.atomic():
        replaced = Token.objects.filter(user=user).delete()[0] > 0
        token = Token.objects.create(user=user)
        record_event(user, "accounts.token.replaced" if replaced else "accounts.token.created",
                     f"API token {'replaced' if replaced else 'created'} for {user.username}")
    return token.key
