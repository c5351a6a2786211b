"""seed_demo: realistic, deterministic, safe to re-run, demo only."""

from datetime import timedelta
from io import StringIO

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Max, Min
from django.test import override_settings
from django.utils import timezone

from compliance.models import ConsentEvent, ConsentState, SubjectRequest
from shop.demo import DemoRefused, demo_users_ensure
from shop.models import Customer, Order
from versions.ledger import ledger_verify


def _seed(**options):
    out = StringIO()
    with override_settings(DEMO=True):
        call_command("seed_demo", stdout=out, **options)
    return out.getvalue()


def _user(username):
    return get_user_model().objects.get(username=username)


def _snapshot():
    return {
        model._meta.label: sorted(
            tuple(str(v) for k, v in row.items() if k != "updated_at" and not k.endswith("id"))
            for row in model._base_manager.values()
        )
        for model in [*apps.get_app_config("shop").get_models(), ConsentEvent, ConsentState]
        if not model.__name__.startswith("Historical")
    }


def _clear():
    """Remove the seeded rows: requests and consents about customers first (they point at
    them), then the shop's."""
    models = [SubjectRequest, ConsentEvent, ConsentState, *apps.get_app_config("shop").get_models()]
    for model in models:
        model._base_manager.all()._raw_delete(model._base_manager.db)


def test_refuses_without_demo_mode(db):
    """Published passwords never reach a production database."""
    with pytest.raises(CommandError, match="created only with DEMO=true"):
        call_command("seed_demo", stdout=StringIO())
    with pytest.raises(DemoRefused):
        demo_users_ensure()
    assert not Customer.objects.exists()
    assert not get_user_model().objects.filter(username="admin").exists()


def test_default_run_fills_every_table_and_prints_logins(db):
    """200 customers, rows in every table, dates over three years, history of edits."""
    out = _seed()
    assert Customer.all_objects.count() == 200 and Customer.deleted_objects.count() == 3
    for model in apps.get_app_config("shop").get_models():
        assert model.objects.exists(), model._meta.label
    span = Customer.objects.aggregate(first=Min("created_at"), last=Max("created_at"))
    assert span["last"] - span["first"] > timedelta(days=2 * 365)
    assert span["first"] >= timezone.now() - timedelta(days=3 * 365 + 1)
    assert Customer.history.filter(history_type="~").count() >= 60
    assert Order.history.filter(history_type="~", history_user_id=_user("officer").pk).exists()
    for line in ("admin / demo-admin-pass", "officer / demo-officer-pass", "auditor / demo"):
        assert line in out
    # Seven policies, one legal hold, 14 steps of six requests, the seed itself.
    assert ledger_verify(actor=None, reason="").checked == 23


def test_same_seed_same_data(db):
    """Two runs with the same seed produce the same rows."""
    _seed(customers=15, seed=7, no_logins=True)
    first = _snapshot()
    _clear()
    _seed(customers=15, seed=7, no_logins=True)
    assert _snapshot() == first
    _clear()
    _seed(customers=15, seed=8, no_logins=True)
    assert _snapshot() != first


def test_rerun_adds_nothing(db):
    """A second run finds the data, adds nothing, and resets the logins."""
    _seed(customers=5)
    before = _snapshot()
    out = _seed(customers=5)
    assert "Demo data already present (5 customers): nothing added." in out
    assert _snapshot() == before
    assert ledger_verify(actor=None, reason="").checked == 23


def test_logins_have_their_roles(db, client):
    """The officer and auditor logins work and belong to their groups."""
    _seed(customers=2)
    assert client.login(username="auditor", password="demo-auditor-pass")
    users = get_user_model().objects
    assert list(users.get(username="auditor").groups.values_list("name", flat=True)) == ["Auditor"]
    assert users.get(username="officer").groups.get().name == "Privacy officer"
    assert users.get(username="admin").is_superuser


def test_updated_at_follows_saves_but_keeps_seeded_dates(db):
    """Seeded rows keep their past dates; a later save() moves updated_at to now."""
    _seed(customers=3, no_logins=True)
    customer = Customer.objects.order_by("created_at").first()
    assert customer.updated_at.date() < timezone.now().date()  # seeded dates end yesterday
    customer.phone = "+44 20 7946 0999"
    customer.save(update_fields=["phone"])
    customer.refresh_from_db()
    assert customer.updated_at > timezone.now() - timedelta(minutes=1)


def test_every_seeded_row_passes_model_validation(db):
    """Officers can save any demo record in the admin: each row is valid as a form would see it."""
    _seed(customers=40, no_logins=True)
    # The names carry accents (Björn, Chloé), so the emails made from them must be folded.
    assert Customer.objects.filter(full_name__regex=r"[^\x00-\x7f]").exists()
    for model in apps.get_app_config("shop").get_models():
        if model.__name__.startswith("Historical"):
            continue
        for obj in model.objects.all():
            obj.full_clean()


def test_demo_has_the_seeds_retention_policies_deleted_customers_and_a_hold(db):
    """Every retention page has something to show, and every policy is valid."""
    from retention.models import LegalHold, RetentionPolicy
    from retention.selectors import policy_validate
    from retention.services import policy_purge

    _seed(customers=12)
    policies = list(RetentionPolicy.objects.all())
    assert len(policies) == 7
    for policy in policies:
        policy_validate(policy)
    assert Customer.deleted_objects.count() == 3
    assert LegalHold.objects.filter(released_at__isnull=True).count() == 1
    anonymise = RetentionPolicy.objects.get(name__startswith="Deleted customers")
    assert policy_purge(policy=anonymise, actor=None).purged == 1  # the one deleted 45 days ago
    assert policy_purge(policy=anonymise, actor=None).purged == 0  # already anonymised


def test_demo_flags_partner_sharing_so_gpc_has_something_to_opt_out_of(db):
    """The demo's partner-sharing purpose is sale or sharing (a GPC signal withdraws it); the
    others are not."""
    from compliance.models import ConsentPurpose

    _seed(customers=3)
    flagged = set(
        ConsentPurpose.objects.filter(sale_or_sharing=True).values_list("slug", flat=True)
    )
    assert flagged == {"third-party-sharing"}
