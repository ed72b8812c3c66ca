"""A grant made while a rule refused it (a minor's grant of a permission
closed to minors, or without a guardian's consent) is marked, so that a
later birth-date correction or birthday does not put it in effect
(policy §7); ``consent_summary`` carries the mark per permission.
Grants that current minors hold and that are not in effect for such a rule
are marked; the rest were in effect when made."""
from datetime import date

from peewee import BooleanField

PERMISSIONS = ("device_info", "location", "precise_location", "service_push", "marketing_push",
               "personalization", "partner_sharing", "usage_statistics")
NOT_FOR_MINORS = ("precise_location", "marketing_push", "partner_sharing")
ADULT_AGE = 18


def _adulthood_cutoff(today):
    try:
        return today.replace(year=today.year - ADULT_AGE)
    except ValueError:  # 29 February
        return today.replace(year=today.year - ADULT_AGE, day=28)


def up(migrator, db):
    migrator.migrate(migrator.add_column("consent", "refused", BooleanField(default=False)))
    marks = ", ".join(db.param for _ in NOT_FOR_MINORS)
    db.execute_sql(
        f'UPDATE consent SET refused = {db.param} WHERE granted = {db.param} AND user_id IN '
        f'(SELECT id FROM "user" WHERE birth_date > {db.param}) AND (permission IN ({marks}) OR NOT EXISTS '
        '(SELECT 1 FROM guardian_consent g WHERE g.user_id = consent.user_id AND g.revoked_at IS NULL))',
        (True, True, _adulthood_cutoff(date.today()), *NOT_FOR_MINORS))

    migrator.migrate(*[migrator.add_column("consent_summary", f"{key}_refused", BooleanField(null=True))
                       for key in PERMISSIONS])
    names, picks = ["user_id"], ["user_id"]
    for key in PERMISSIONS:
        names += [f"{key}_granted", f"{key}_policy", f"{key}_refused"]
        picks += [f"(MAX(CASE WHEN permission = '{key}' THEN (CASE WHEN granted THEN 1 ELSE 0 END) END) = 1)",
                  f"MAX(CASE WHEN permission = '{key}' THEN policy_id END)",
                  f"(MAX(CASE WHEN permission = '{key}' THEN (CASE WHEN refused THEN 1 ELSE 0 END) END) = 1)"]
    db.execute_sql("DELETE FROM consent_summary")
    db.execute_sql(f"INSERT INTO consent_summary ({', '.join(names)}) "
                   f"SELECT {', '.join(picks)} FROM consent GROUP BY user_id")


def down(migrator, db):
    migrator.migrate(*[migrator.drop_column("consent_summary", f"{key}_refused") for key in PERMISSIONS],
                     migrator.drop_column("consent", "refused"))
