"""Queries rendered once and run many times (models.base.Rendered): the
slots are filled per run, and on PostgreSQL the last statement runs as a
prepared statement, prepared once per connection."""
from models.base import db
from models import User, is_postgres
from models.base import Rendered, slot
from tests.consent_helpers import new_user


def test_slots_are_filled_per_run_and_the_statement_prepared_once(client):
    people = [new_user(client)["user"]["id"] for _ in range(2)]
    with db.connection_context():
        by_id = Rendered(User.select(User.email).where(User.id == slot("user_id")), prepare="test_user_email")
        emails = [by_id.execute(user_id=User.id.db_value(uid)).fetchall() for uid in people * 2]
        expected = [[(User.get_by_id(uid).email,)] for uid in people * 2]
        assert emails == expected
        if is_postgres():
            names = [row[0] for row in db.execute_sql("SELECT name FROM pg_prepared_statements").fetchall()]
            assert names.count("test_user_email") == 1
            assert by_id.prepared_sql.startswith("EXECUTE test_user_email(")


def test_insert_rows_fills_defaults_per_row_and_skips_only_unique_conflicts(app):
    """A callable default is called for each row (two users get two ids), and
    ignore_conflicts skips a repeated unique value but not a missing NOT NULL
    (``kind``: an installation has no email or password, every row has a kind)."""
    import peewee
    import pytest

    from models import User
    from models.base import insert_rows

    rows = [{"email": f"u{n}@example.com", "email_normalized": f"u{n}@example.com", "password_hash": "x"}
            for n in range(3)]
    with db.connection_context():
        insert_rows(User, rows, ("email", "email_normalized", "password_hash"))
        assert len({user.id for user in User.select()}) == 3
        assert len({user.ledger_subject for user in User.select()}) == 3
        insert_rows(User, rows[:1] + [{**rows[0], "email_normalized": "new@example.com"}],
                    ("email", "email_normalized", "password_hash"), ignore_conflicts=True)
        assert User.select().count() == 4
        with pytest.raises(peewee.IntegrityError), db.atomic():
            insert_rows(User, [{"email": "n@example.com", "email_normalized": "n@example.com", "kind": None}],
                        ("email", "email_normalized", "kind"), ignore_conflicts=True)
        assert User.select().count() == 4
