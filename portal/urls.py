from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from . import metrics, notifications, ops, views

cell_urls = [
    path("", views.cell, name="cell"),
    path("decommission/", views.decommission, name="cell-decommission"),
    path("redeliver/", views.redeliver, name="cell-redeliver"),
    path("replace/", views.replace, name="cell-replace"),
    path("failover/", views.failover, name="cell-failover"),
]

run_urls = [
    path("", views.run_page, name="run"),
    path("approve/", views.run_action, {"action": "approve"}, name="run-approve"),
    path("resume/", views.run_action, {"action": "resume"}, name="run-resume"),
    path("abort/", views.run_action, {"action": "abort"}, name="run-abort"),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("request/mysql/", views.request_form, {"kind": "mysql"}, name="request-mysql"),
    path("request/app/", views.request_form, {"kind": "app"}, name="request-app"),
    path("cells/<slug:cell>/<slug:environment>/", include(cell_urls)),
    path("runs/", views.run_list, name="runs"),
    path("runs/<int:run_id>/", include(run_urls)),
    path("audit/", views.audit, name="audit"),
    path("notifications/", notifications.notification_list, name="notifications"),
    path("notifications/read/", notifications.mark_read, name="notifications-read"),
    path("policy/", views.policy_page, name="policy"),
    path("profile/", views.profile, name="profile"),
    path("evacuations/", views.evacuations_page, name="evacuations"),
    path("evacuations/<int:evacuation_id>/", views.evacuation_page, name="evacuation"),
    path("evacuations/<int:evacuation_id>/pause/", views.evacuation_action, {"action": "pause"}, name="evacuation-pause"),
    path("evacuations/<int:evacuation_id>/resume/", views.evacuation_action, {"action": "resume"}, name="evacuation-resume"),
    path("evacuations/<int:evacuation_id>/abort/", views.evacuation_action, {"action": "abort"}, name="evacuation-abort"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("oidc/", include("mozilla_django_oidc.urls")),  # single sign-on (portal/sso.py): 404 while not configured
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's init script from its own URL: no inline script (the CSP forbids them).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("cells.api.urls")),
    path("api/", include("dr.api.urls")),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", ops.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
]
