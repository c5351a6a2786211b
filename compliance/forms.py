"""Forms of the compliance pages on the admin site."""

from django import forms

from retention.models import RESTRICTION_GROUNDS, LegalHold

from .models import ConsentEvent

__all__ = [
    "REQUESTERS",
    "ConsentRecordForm",
    "RestrictionForm",
    "RestrictionLiftForm",
    "SubjectSearchForm",
]

REQUESTERS = [
    "The data subject",
    "The data subject's representative",
    "A court",
    "A supervisory authority",
    "Other (said in the reason)",
]


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
    # A choice, not free text: the restriction outlives an erasure, a name typed here would too.
    requested_by = forms.ChoiceField(
        choices=[(c, c) for c in REQUESTERS],
        help_text="Who asked for it. Leave names and contact details out of the reason too.",
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Recorded with the restriction, in its history and in the ledger.",
    )


class RestrictionLiftForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), help_text="Why the restriction ends."
    )


class ConsentRecordForm(forms.Form):
    """Where a grant or withdrawal an officer records was collected, and why it is recorded."""

    collection_point = forms.CharField(
        max_length=ConsentEvent._meta.get_field("collection_point").max_length
    )
    reason = forms.CharField(required=False, max_length=2000)
