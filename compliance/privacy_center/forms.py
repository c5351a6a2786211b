"""Forms of the privacy center: every value a person sends is validated here."""

from django import forms
from django.utils.translation import gettext_lazy as _


class ConsentChoiceForm(forms.Form):
    """One grant or withdrawal on the preferences page, with the text version it showed."""

    purpose = forms.SlugField(max_length=64)
    version = forms.IntegerField(min_value=1, max_value=2**31 - 1)
    choice = forms.ChoiceField(choices=[("grant", _("Grant")), ("withdraw", _("Withdraw"))])
