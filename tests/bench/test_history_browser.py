"""The history browser benchmark's fixture: its stated size, about its own customers."""

import pytest
from django.db import connection

from bench import history_browser
from bench.harness import Config, SetupError
from shop.models import Customer

QUICK = Config(quick=True, rounds=1, batch=1, warmup=0)


def _sizes(monkeypatch, rows, customers):
    monkeypatch.setattr(
        history_browser, "QUICK", {"rows": rows, "customers": customers, "requests": 2, "depth": 5}
    )


def _bench_history():
    return Customer.history.filter(email__startswith="history-bench-")


def test_history_reaches_its_size_over_customers_whose_ids_have_gaps(
    postgres, transactional_db, monkeypatch
):
    """Customers another benchmark made (kept or deleted) between the fixture's own: the
    history still reaches its size, every row about one of the fixture's customers."""
    _sizes(monkeypatch, rows=300, customers=10)
    history_browser.setup_fixtures(QUICK)
    other = Customer.objects.create(email="other@example.com", full_name="Other")
    gone = Customer.objects.create(email="gone@example.com", full_name="Gone")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM shop_customer WHERE id = %s", [gone.pk])
    _sizes(monkeypatch, rows=2_000, customers=40)
    history_browser.setup_fixtures(QUICK)
    assert _bench_history().count() == 2_000
    assert Customer.history.filter(id=other.pk).count() == 1  # its own creation row only
    per_customer = {row["id"] for row in _bench_history().values("id")}
    assert len(per_customer) == 40


def test_run_refuses_to_report_below_its_size(postgres, transactional_db, monkeypatch):
    """History rows gone since the fixture was built: the run stops with what to do."""
    _sizes(monkeypatch, rows=300, customers=10)
    history_browser.setup_fixtures(QUICK)
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM shop_historicalcustomer WHERE history_id IN "
            "(SELECT history_id FROM shop_historicalcustomer ORDER BY history_id LIMIT 5)"
        )
    with pytest.raises(SetupError, match="below the 300 this run states"):
        history_browser.run(QUICK)
