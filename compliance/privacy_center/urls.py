"""URLs of the privacy center, mounted at /privacy/ by the project."""

from django.urls import path

from . import views

app_name = "privacy_center"

urlpatterns = [
    path("", views.home, name="home"),
    path("download/<str:token>/", views.download, name="download"),
]
