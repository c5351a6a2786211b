"""A record's versions with field-level changes, and the `history` command that prints them."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from shop.models import Customer
from versions.context import change_context
from versions.selectors import record_versions


def test_versions_list_each_change_oldest_first(db, officer, customer):
    """Creation shows the values set; each later version only the fields it changed."""
    with change_context(user=officer, reason="Typo"):
        customer.name = "Ada King"
        customer.save()
    customer_pk = customer.pk
    customer.delete()  # soft delete: a change of deleted_at

    versions = record_versions(Customer, customer_pk)

    assert [v.action for v in versions] == ["created", "changed", "changed"]
    assert ("name", "Ada Lovelace", "Ada King") in [
        (c.field, c.old, c.new) for c in versions[1].changes
    ]
    assert [c.field for c in versions[1].changes] == ["name", "updated_at"]
    assert "deleted_at" in [c.field for c in versions[2].changes]
    assert "email" in [c.field for c in versions[0].changes]


def test_history_command_prints_versions_with_diffs(db, officer, customer):
    """`history shop.Customer <pk>` prints who, why and old -> new per changed field."""
    with change_context(user=officer, reason="Typo"):
        customer.name = "Ada King"
        customer.save()
    out = StringIO()

    call_command("history", "shop.Customer", str(customer.pk), stdout=out)

    text = out.getvalue()
    assert f"shop.Customer #{customer.pk}: 2 version(s)" in text
    assert "changed  by officer" in text and ": Typo" in text
    assert "name: 'Ada Lovelace' -> 'Ada King'" in text


@pytest.mark.parametrize(
    "args, message",
    [
        (["shop.Nothing", "1"], "No model 'shop.Nothing'"),
        (["auth.Group", "1"], "keeps no history"),
        (["shop.Customer", "abc"], "not a valid primary key"),
        (["shop.Customer", "999"], "has no versions"),
    ],
)
def test_history_command_refuses_bad_input_clearly(db, args, message):
    """Unknown model, untracked model, malformed or unknown key: a clear error."""
    with pytest.raises(CommandError, match=message):
        call_command("history", *args, stdout=StringIO())
