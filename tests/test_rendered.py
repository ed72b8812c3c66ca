"""Queries rendered once and run many times (models.base.Rendered): the
slots are filled per run, and on PostgreSQL the last statement runs as a
prepared statement, prepared once per connection."""
from extensions import db
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
