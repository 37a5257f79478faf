from cells import access


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"is_operator": access.is_operator(user), "my_teams": list(user.teams.all())}
