from django.utils.functional import SimpleLazyObject

from cells import access
from dr import notices

from . import sso


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"sso_enabled": sso.enabled()}
    return {"sso_enabled": sso.enabled(), "is_operator": access.is_operator(user), "my_teams": list(user.teams.all()),
            # counted only when a template shows it (fragments do not)
            "unread_notices": SimpleLazyObject(lambda: notices.unread_count(user))}
