"""The in-portal notification list: the notices of the cells the signed-in user can see (dr.notices decides which),
newest first, and marking them read."""
from __future__ import annotations

from django.core.paginator import Paginator
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from dr import notices
from dr.models import NoticeRead

from .web import portal_view, render_page

PAGE_SIZE = 50


@portal_view
def notification_list(request):
    user, show = request.user, request.GET.get("show", "")
    qs = notices.unread(user) if show == "unread" else notices.visible_notices(user)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page", 1))
    read = set(NoticeRead.objects.filter(user=user, notice__in=[n.pk for n in page]).values_list("notice_id", flat=True))
    rows = [{"notice": n, "unread": n.pk not in read and n.created_at >= user.date_joined} for n in page]
    return render_page(request, "notifications.html", {"rows": rows, "page": page, "show": show})


@require_POST
@portal_view
def mark_read(request):
    """`notice` (repeatable): mark those read; none: mark every unread notice read."""
    ids = request.POST.getlist("notice")
    notices.mark_read(request.user, None if not ids else [int(i) for i in ids if i.isdigit()])
    show = request.POST.get("show", "")
    return redirect(reverse("notifications") + ("?show=unread" if show == "unread" else ""))
