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
    path("failover", views.FailoverView.as_view(), name="api-failover"),
    path("failover/<int:run_id>", views.FailoverRunView.as_view(), name="api-failover-run"),
    path("failover/<int:run_id>/approve", views.FailoverActionView.as_view(action="approve"), name="api-failover-approve"),
    path("failover/<int:run_id>/resume", views.FailoverActionView.as_view(action="resume"), name="api-failover-resume"),
    path("failover/<int:run_id>/abort", views.FailoverActionView.as_view(action="abort"), name="api-failover-abort"),
    path("me", views.MeView.as_view(), name="api-me"),
]
