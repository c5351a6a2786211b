"""Forms of the privacy center: every field labelled, every value checked where it enters."""

from django import forms
from django.utils.translation import gettext_lazy as _

from ..models import Jurisdiction, SubjectRequest

Kind = SubjectRequest.Kind

KINDS = [
    (Kind.ACCESS, _("A copy of my personal data")),
    (Kind.ERASURE, _("Erase my personal data")),
    (Kind.RECTIFICATION, _("Correct my personal data")),
    (Kind.RESTRICTION, _("Restrict the use of my personal data")),
]
REGIONS = [
    (Jurisdiction.GDPR, _("European Union, EEA or United Kingdom (GDPR)")),
    (Jurisdiction.CCPA, _("California (CCPA)")),
]


class StartForm(forms.Form):
    email = forms.EmailField(label=_("Your email address"), max_length=254)
    kind = forms.ChoiceField(label=_("What would you like us to do?"), choices=KINDS)
    jurisdiction = forms.ChoiceField(label=_("Where do you live?"), choices=REGIONS)
    details = forms.CharField(
        label=_("What should we correct? (only for a correction)"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    # Honeypot: hidden by the stylesheet, left empty by people, filled in by robots.
    website = forms.CharField(
        label=_("Leave this field empty"),
        required=False,
        widget=forms.TextInput(attrs={"tabindex": "-1", "autocomplete": "off"}),
    )

    def clean(self):
        data = super().clean()
        if data.get("kind") == Kind.RECTIFICATION and not (data.get("details") or "").strip():
            self.add_error("details", _("Say what we should correct."))
        return data


class CodeForm(forms.Form):
    code = forms.RegexField(
        label=_("The 6-digit code from the email"),
        regex=r"^\s*[0-9]{6}\s*$",  # ASCII digits: others are a format error, not a try
        max_length=12,
        error_messages={"invalid": _("Enter the 6 digits from the email.")},
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code"}),
    )


class ConsentChoiceForm(forms.Form):
    """One grant or withdrawal on the preferences page, with the text version it showed."""

    purpose = forms.SlugField(max_length=64)
    version = forms.IntegerField(min_value=1, max_value=2**31 - 1)
    choice = forms.ChoiceField(choices=[("grant", _("Grant")), ("withdraw", _("Withdraw"))])
