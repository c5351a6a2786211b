"""Record versions ask the registration about data subjects; the compliance app answers."""

import pytest

from compliance import selectors
from versions import subjects


@pytest.fixture
def registration():
    """Put back whatever was registered once the test is done."""
    saved = subjects._answers
    yield
    subjects._answers = saved


def test_compliance_registers_its_answers_when_ready():
    """At app-ready time the compliance app registers its subject lookup and erasure log."""
    assert subjects._answers.find is selectors.subject_find
    assert subjects._answers.erased is selectors.subjects_erased
    assert selectors.SubjectAmbiguous is subjects.SubjectAmbiguous


def test_lookups_ask_the_registration(registration):
    """subject_find and subjects_erased return what the registered answers say."""
    subjects.subjects_register(find=lambda identifier: f"found {identifier}", erased=set)
    assert subjects.subject_find("42") == "found 42"
    subjects.subjects_register(find=lambda identifier: None, erased=lambda keys: {"7"})
    assert subjects.subjects_erased(["7", "8"]) == {"7"}


def test_nothing_registered_finds_nobody_and_no_erasure(registration):
    """Without a registration no subject is found and no erasure is on record."""
    subjects._answers = None
    assert subjects.subject_find("42") is None
    assert subjects.subjects_erased(["42"]) == set()
