from django.urls import path

from . import views

urlpatterns = [
    path("failover", views.FailoverView.as_view(), name="api-failover"),
    path("failover/<int:run_id>", views.FailoverRunView.as_view(), name="api-failover-run"),
    path("failover/<int:run_id>/approve", views.FailoverActionView.as_view(action="approve"), name="api-failover-approve"),
    path("failover/<int:run_id>/resume", views.FailoverActionView.as_view(action="resume"), name="api-failover-resume"),
    path("failover/<int:run_id>/abort", views.FailoverActionView.as_view(action="abort"), name="api-failover-abort"),
]
