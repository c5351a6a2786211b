from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from compliance.privacy_center.views import gpc_json

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("privacy/", include("compliance.privacy_center.urls")),
    path(".well-known/gpc.json", gpc_json, name="gpc_json"),
]

# Refusals and missing pages in the admin's layout, saying what happened (templates/4xx.html).
handler400 = "project.views.bad_request"
handler403 = "project.views.permission_denied"
handler404 = "project.views.page_not_found"
