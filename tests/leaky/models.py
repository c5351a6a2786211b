"""A test app that forgets to classify its personal data (see test_checks.py)."""

from django.db import models


class Contact(models.Model):
    email = models.CharField(max_length=200)
    display_name = models.CharField(max_length=100)
    notes = models.TextField()

    def __str__(self):
        return self.display_name
