from django.urls import path

from . import views

urlpatterns = [
    path("mysql", views.MySQLRequestView.as_view(), name="api-mysql"),
    path("app", views.AppRequestView.as_view(), name="api-app"),
    path("status/<slug:cell>/<slug:environment>", views.StatusView.as_view(), name="api-status"),
    path("cells", views.CellEnvironmentListView.as_view(), name="api-cells"),
    path("cells/<slug:cell>/<slug:environment>", views.CellEnvironmentView.as_view(), name="api-cell-environment"),
    path("cells/<slug:cell>/<slug:environment>/redeliver", views.RedeliverView.as_view(), name="api-redeliver"),
    path("cells/<slug:cell>/<slug:environment>/replace", views.ReplaceView.as_view(), name="api-replace"),
    path("placements/<int:decision_id>", views.PlacementView.as_view(), name="api-placement"),
    path("policy", views.PolicyView.as_view(), name="api-policy"),
    path("me", views.MeView.as_view(), name="api-me"),
]
