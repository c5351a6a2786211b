"""The project's URLs plus a stock admin site: the baseline of the history browser bench."""

from django.contrib import admin
from django.urls import path

from project.urls import urlpatterns as project_urlpatterns
from shop.models import Customer

stock_site = admin.AdminSite(name="stock")
# The stock changelist over the same history table: Django's ModelAdmin as it comes.
stock_site.register(Customer.history.model)

urlpatterns = [path("stock-admin/", stock_site.urls), *project_urlpatterns]
