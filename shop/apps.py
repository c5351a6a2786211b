from django.apps import AppConfig


class ShopConfig(AppConfig):
    """The sample domain: an online shop's customers and everything held about them."""

    name = "shop"
    verbose_name = "Shop (sample domain)"
