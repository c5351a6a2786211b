"""The export benchmark's fixture reaches its size whatever an earlier run left."""

from bench import export
from shop.models import Customer
from versions.setbased import history_record


def test_subject_is_rebuilt_to_its_size_after_another_run_wrote_about_it(
    postgres, transactional_db
):
    """History rows another benchmark wrote about the subject go: it holds its size again."""
    subject = export._subject(1_000)
    customer = Customer.all_objects.filter(pk=subject.pk)
    for _ in range(3):
        history_record(customer, history_type="~")
    assert export._counted(subject) == 1_003
    assert export._subject(1_000).pk == subject.pk
    assert export._counted(subject) == 1_000
