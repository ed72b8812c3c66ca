"""The consent rules have a Python form (one user's checks) and a SQL form
(audiences, statistics); both come from ``consent.RULES``. This property test
builds random users in the database and asks both forms the same questions."""
from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from peewee import Case

import consent

from consent import catalogue
from models import Consent, ConsentSummary, GuardianConsent, PolicyChange, PolicyVersion, User
from models.base import utcnow

TODAY = date.today()
BIRTH = st.sampled_from([None, TODAY - timedelta(days=365 * 30), TODAY - timedelta(days=365 * 15),
                         TODAY.replace(year=TODAY.year - 18)])
# (granted, made under, refused: granted while a rule refused it)
CHOICE = st.sampled_from([None, (True, "old", False), (True, "new", False), (False, "new", False),
                          (True, "new", True), (True, "old", True)])
PERSON = st.tuples(BIRTH, st.booleans(), st.fixed_dictionaries({key: CHOICE for key in catalogue.KEYS}))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(people=st.lists(PERSON, min_size=1, max_size=6), changed=st.sets(st.sampled_from(catalogue.KEYS)))
def test_sql_and_python_forms_agree(app, people, changed):
    with app.app_context():
        first = PolicyVersion.get(PolicyVersion.version == "1")
        second = PolicyVersion.create(version=f"p{utcnow().timestamp()}", text="t")
        for key in changed:
            PolicyChange.create(policy=second, permission=key)
        users = []
        for n, (birth, guardian, choices) in enumerate(people):
            user = User.create(email=f"{n}@x.example", email_normalized=f"{n}-{utcnow().timestamp()}@x.example",
                               password_hash="x", birth_date=birth)
            if guardian:
                GuardianConsent.create(user=user, guardian_name="g", relationship="r", evidence_ref="e")
            for key, choice in choices.items():
                if choice is not None:
                    granted, made_under, refused = choice
                    Consent.create(user=user, permission=key, granted=granted, refused=refused,
                                   policy=first if made_under == "old" else second)
            users.append(user)
        ConsentSummary.refresh([u.id for u in users])  # what every write through the engine does
        subjects = consent.load_subjects(users)
        for key in catalogue.KEYS:
            sql = consent.SqlSubject()
            reason = consent.refusal_sql([key], sql)
            query = sql.join(User.select(User.id, Case(None, reason, None).alias("reason"))).where(
                User.id.in_([u.id for u in users]))
            from_sql = {row["id"]: row["reason"] for row in query.dicts()}
            for user in users:
                decision = consent.decide(key, subjects[user.id])
                expected = None if decision.effective else f"{key}:{decision.reason}"
                assert from_sql[user.id] == expected, (key, user.birth_date, subjects[user.id])
        # clean up for the next example
        Consent.delete().execute()
        GuardianConsent.delete().execute()
        User.delete().where(User.id.in_([u.id for u in users])).execute()
        PolicyChange.delete().where(PolicyChange.policy == second).execute()
        second.delete_instance()
