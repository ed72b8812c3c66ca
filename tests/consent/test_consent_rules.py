"""The effective-consent rules, table-driven (issue 3, acceptance 1)."""
from datetime import date

import pytest

from consent import Decision, State, Subject, adulthood_cutoff, decide, is_minor

TODAY = date(2026, 6, 15)
ADULT = date(1990, 1, 1)
MINOR = date(2011, 6, 16)  # 14, turns 15 tomorrow


def state(granted, stale=False):
    # the grant was made under policy 2; a stale one predates policy 3's change
    return State(granted=granted, policy_id=2, policy_version="2", updated_at=None, changed_in=3 if stale else 2)


NOT_ASKED = None
GRANTED = "granted"
WITHDRAWN = "withdrawn"

# (permission, choice, stale, age, guardian, requirement granted) -> reason (None = in effect)
TABLE = [
    # not asked: nothing else matters
    ("location", NOT_ASKED, False, "adult", False, None, "not_asked"),
    ("location", NOT_ASKED, False, "minor", True, None, "not_asked"),
    ("precise_location", NOT_ASKED, False, "adult", False, True, "not_asked"),
    # withdrawn beats stale and age
    ("location", WITHDRAWN, False, "adult", False, None, "withdrawn"),
    ("location", WITHDRAWN, True, "adult", False, None, "withdrawn"),
    ("marketing_push", WITHDRAWN, False, "minor", True, None, "withdrawn"),
    # granted, adult
    ("location", GRANTED, False, "adult", False, None, None),
    ("location", GRANTED, True, "adult", False, None, "stale_policy"),
    ("marketing_push", GRANTED, False, "adult", False, None, None),
    ("precise_location", GRANTED, False, "adult", False, True, None),
    ("precise_location", GRANTED, False, "adult", False, False, "requires:location"),
    ("precise_location", GRANTED, False, "adult", False, "stale", "requires:location"),
    ("precise_location", GRANTED, True, "adult", False, True, "stale_policy"),
    # granted, minor without guardian consent
    ("location", GRANTED, False, "minor", False, None, "guardian_required"),
    ("location", GRANTED, True, "minor", False, None, "stale_policy"),
    ("service_push", GRANTED, False, "minor", False, None, "guardian_required"),
    ("marketing_push", GRANTED, False, "minor", False, None, "not_for_minors"),
    ("partner_sharing", GRANTED, False, "minor", False, None, "not_for_minors"),
    ("precise_location", GRANTED, False, "minor", False, True, "not_for_minors"),
    # granted, minor with guardian consent
    ("location", GRANTED, False, "minor", True, None, None),
    ("service_push", GRANTED, False, "minor", True, None, None),
    ("location", GRANTED, True, "minor", True, None, "stale_policy"),
    ("marketing_push", GRANTED, False, "minor", True, None, "not_for_minors"),
    ("precise_location", GRANTED, False, "minor", True, True, "not_for_minors"),
    ("personalization", GRANTED, False, "minor", True, None, None),
    # no birth date: not known to be a minor
    ("marketing_push", GRANTED, False, "unknown", False, None, None),
]


def subject_for(permission, choice, stale, age, guardian, requirement):
    states = {}
    if choice is not None:
        states[permission] = state(choice == GRANTED, stale)
    if requirement is not None:
        states["location"] = state(requirement is not False, stale=requirement == "stale")
    birth = {"adult": ADULT, "minor": MINOR, "unknown": None}[age]
    return Subject(birth_date=birth, guardian_consent=guardian, states=states)


@pytest.mark.parametrize("permission,choice,stale,age,guardian,requirement,reason", TABLE)
def test_effective_consent_table(permission, choice, stale, age, guardian, requirement, reason):
    decision = decide(permission, subject_for(permission, choice, stale, age, guardian, requirement), TODAY)
    assert decision == Decision(reason is None, reason)


@pytest.mark.parametrize("birth,today,minor", [
    (date(2008, 6, 15), date(2026, 6, 15), False),  # 18 today
    (date(2008, 6, 16), date(2026, 6, 15), True),   # 18 tomorrow
    (date(2008, 2, 29), date(2026, 2, 28), True),   # leap-day birthday
    (date(2008, 2, 28), date(2026, 2, 28), False),
    (None, date(2026, 6, 15), False),
])
def test_minor_means_under_18_on_the_day(birth, today, minor):
    assert is_minor(birth, today) is minor


def test_adulthood_cutoff_on_leap_day():
    assert adulthood_cutoff(date(2024, 2, 29)) == date(2006, 2, 28)


@pytest.mark.parametrize("age,guardian,reason", [
    ("minor", False, "not_for_minors"),  # the rule that refused it still does
    ("adult", False, "reconfirm"),       # a corrected birth date or a birthday does not revive it
    ("unknown", False, "reconfirm"),
])
def test_a_grant_made_while_refused_waits_for_reconfirm(age, guardian, reason):
    refused = State(granted=True, policy_id=2, policy_version="2", updated_at=None, changed_in=2, refused=True)
    birth = {"adult": ADULT, "minor": MINOR, "unknown": None}[age]
    subject = Subject(birth_date=birth, guardian_consent=guardian, states={"marketing_push": refused})
    assert decide("marketing_push", subject, TODAY) == Decision(False, reason)


def test_a_refused_grant_made_at_17_waits_for_reconfirm_after_the_18th_birthday():
    refused = State(granted=True, policy_id=2, policy_version="2", updated_at=None, changed_in=2, refused=True)
    subject = Subject(birth_date=date(2008, 6, 15), states={"marketing_push": refused})
    assert decide("marketing_push", subject, date(2026, 6, 14)).reason == "not_for_minors"
    assert decide("marketing_push", subject, date(2026, 6, 15)).reason == "reconfirm"
