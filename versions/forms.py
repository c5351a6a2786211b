"""Forms of the versions pages on the admin site."""

import datetime

from django import forms

__all__ = ["ChangeFilterForm"]

ACTION_CHOICES = [("", "Any"), ("+", "Created"), ("~", "Changed"), ("-", "Deleted")]


class ChangeFilterForm(forms.Form):
    """The filters of the list of all changes."""

    model = forms.ChoiceField(required=False)
    user = forms.CharField(required=False, max_length=150, help_text="Username.")
    action = forms.ChoiceField(required=False, choices=ACTION_CHOICES)
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Up to and including this day.",
    )
    subject = forms.CharField(
        required=False, max_length=254, label="Data subject", help_text="Email or id."
    )

    def __init__(self, *args, models, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = [("", "All")] + [
            (m._meta.label, f"{m._meta.verbose_name.capitalize()} ({m._meta.label})")
            for m in models
        ]

    def clean_until(self):
        until = self.cleaned_data.get("until")
        # The list runs up to the start of the next day, which the last day of the calendar
        # does not have.
        if until is not None and until >= datetime.date.max:
            raise forms.ValidationError("Choose a day before 31 December 9999.")
        return until
