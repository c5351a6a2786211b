"""Forms of the compliance pages on the admin site."""

from django import forms

from retention.models import RESTRICTION_GROUNDS, LegalHold

__all__ = ["RestrictionForm", "RestrictionLiftForm", "SubjectSearchForm"]


class SubjectSearchForm(forms.Form):
    q = forms.CharField(
        label="Email or id",
        max_length=254,
        widget=forms.TextInput(attrs={"autofocus": True, "size": 40}),
    )


class RestrictionForm(forms.Form):
    """Restrict a subject's processing (Art. 18): the ground, who asked, and why."""

    ground = forms.ChoiceField(
        choices=[(g, label) for g, label in LegalHold.Ground.choices if g in RESTRICTION_GROUNDS]
    )
    requested_by = forms.CharField(
        max_length=200, help_text="Who asked for it: the data subject, a court, a regulator."
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Recorded with the restriction, in its history and in the ledger.",
    )


class RestrictionLiftForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), help_text="Why the restriction ends."
    )
