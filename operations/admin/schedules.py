"""The schedules' admin (django-celery-beat) on the site, with two of its inputs validated:
a custom task name over its length no longer fails the form's own check, a posted
time zone too long for a file name is the field's error, not a server error, and a form
shown again with a schedule celery cannot parse (`-5`) says so instead of failing."""

from celery.schedules import ParseException
from django.contrib import admin
from django_celery_beat import admin as beat_admin
from django_celery_beat.models import CrontabSchedule, PeriodicTask

__all__ = ["CrontabScheduleAdmin", "PeriodicTaskAdmin"]


class PeriodicTaskForm(beat_admin.PeriodicTaskForm):
    def clean(self):
        if "task" in self.errors:
            # The field said what is wrong; the stock check would look the value up anyway.
            return self.cleaned_data
        return super().clean()


class PeriodicTaskAdmin(beat_admin.PeriodicTaskAdmin):
    form = PeriodicTaskForm


class CrontabScheduleAdmin(beat_admin.CrontabScheduleAdmin):
    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        # The hidden copy of the initial time zone is parsed as a zone file name: a long
        # posted value raises OSError there, before the field could refuse it.
        form.base_fields["timezone"].show_hidden_initial = False
        return form

    @admin.display(description="human readable")
    def human_readable(self, obj):
        # Shown under a refused form too, whose values celery may not parse.
        try:
            return obj.human_readable
        except (ParseException, ValueError):
            return "not a schedule celery can read: see the fields' errors"


for model, model_admin in (
    (PeriodicTask, PeriodicTaskAdmin),
    (CrontabSchedule, CrontabScheduleAdmin),
):
    admin.site.unregister(model)
    admin.site.register(model, model_admin)
