"""URLs of the privacy center, mounted at /privacy/ by the project."""

from django.urls import path

from . import views

app_name = "privacy_center"

urlpatterns = [
    path("", views.home, name="home"),
    path("preferences/", views.preferences, name="preferences"),
    path("preferences/<str:token>/", views.preferences_open, name="preferences_open"),
]
