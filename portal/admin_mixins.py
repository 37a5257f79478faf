from django.contrib import admin, messages

from cells.errors import DomainError


class ReadOnlyAdmin:
    """For records that are history (decisions, audit events, policy versions): viewable, never edited by hand."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    """Rows shown inside their parent's page (claims, steps) that only the services change."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class OperatorActions:
    """Admin actions marked `permissions=["operate"]` (they call the services) are offered to operators only;
    the services check access again."""

    def has_operate_permission(self, request):
        from cells.access import is_operator

        return is_operator(request.user)


def act_on_each(model_admin, request, objects, call, done=lambda result: "done", label=str) -> None:
    """An admin action's body: call a service on each selected object, one message each (a refusal as an error)."""
    for obj in objects:
        try:
            result = call(obj)
        except DomainError as exc:
            model_admin.message_user(request, f"{label(obj)}: {exc.message}", messages.ERROR)
        else:
            model_admin.message_user(request, f"{label(obj)}: {done(result)}")
