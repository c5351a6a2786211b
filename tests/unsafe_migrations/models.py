"""A test app whose second migration breaks running code (see tests/test_migrations.py)."""

from django.db import models


class Gadget(models.Model):
    label = models.CharField(max_length=100)
    owner = models.CharField(max_length=100)

    def __str__(self):
        return self.label
