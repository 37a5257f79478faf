from django.urls import path

from . import readiness, views

urlpatterns = [
    path("failover", views.FailoverView.as_view(), name="api-failover"),
    path("readiness", readiness.ReadinessListView.as_view(), name="api-readiness"),
    path("readiness/<slug:cell>/<slug:environment>/history", readiness.ReadinessHistoryView.as_view(),
         name="api-readiness-history"),
    path("cells/<slug:cell>/<slug:environment>/lag", readiness.LagHistoryView.as_view(), name="api-lag"),
    path("failover/<int:run_id>", views.FailoverRunView.as_view(), name="api-failover-run"),
    path("failover/<int:run_id>/approve", views.FailoverActionView.as_view(action="approve"), name="api-failover-approve"),
    path("failover/<int:run_id>/resume", views.FailoverActionView.as_view(action="resume"), name="api-failover-resume"),
    path("failover/<int:run_id>/abort", views.FailoverActionView.as_view(action="abort"), name="api-failover-abort"),
    path("evacuations", views.EvacuationListView.as_view(), name="api-evacuations"),
    path("evacuations/<int:evacuation_id>", views.EvacuationView.as_view(), name="api-evacuation"),
    path("evacuations/<int:evacuation_id>/pause", views.EvacuationActionView.as_view(action="pause"), name="api-evacuation-pause"),
    path("evacuations/<int:evacuation_id>/resume", views.EvacuationActionView.as_view(action="resume"), name="api-evacuation-resume"),
    path("evacuations/<int:evacuation_id>/abort", views.EvacuationActionView.as_view(action="abort"), name="api-evacuation-abort"),
]
