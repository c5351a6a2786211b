"""URLs of the privacy center, mounted at /privacy/ by the project. Nothing personal in
any of them: a link carries only a random token."""

from django.urls import path
from django.views.i18n import set_language

from . import views

app_name = "privacy_center"

urlpatterns = [
    path("", views.home, name="home"),
    path("preferences/", views.preferences, name="preferences"),
    path("preferences/<str:token>/", views.preferences_open, name="preferences_open"),
    path("request/", views.start, name="start"),
    path("request/code/", views.verify, name="verify"),
    path("request/code/new/", views.resend, name="resend"),
    path("status/<str:token>/", views.status, name="status"),
    path("language/", set_language, name="language"),
    path("download/<str:token>/", views.download, name="download"),
]
