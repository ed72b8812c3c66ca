"""The staff audit log: one row per staff action, hash-chained like the
consent ledger. Rows are only ever inserted (triggers refuse UPDATE and
DELETE)."""
from peewee import BigIntegerField, CharField, DateTimeField, TextField, UUIDField

from models.base import BaseModel


class AuditEntry(BaseModel):
    # One chain for the whole log: ``seq`` is 1, 2, 3... in append order.
    seq = BigIntegerField(primary_key=True)
    # No foreign key: an entry outlives the staff account, and a cascade
    # would be an update the log refuses.
    actor_id = UUIDField(null=True)  # None: the system, not a person
    actor_email = CharField(max_length=254, null=True)  # the address at the time
    actor_role = CharField(max_length=16, null=True)
    action = CharField(max_length=40)
    target = CharField(max_length=120, null=True)  # "user:<uuid>", "campaign:<uuid>", "policy:<version>"...
    details = TextField(null=True)  # JSON; never a shopper's personal data
    request_id = CharField(max_length=64, null=True)
    created_at = DateTimeField()
    prev_hash = CharField(max_length=64)
    hash = CharField(max_length=64)

    class Meta:
        table_name = "audit_entry"
        indexes = (
            (("actor_id", "seq"), False),
            (("action", "seq"), False),
            (("target", "seq"), False),
        )

    @classmethod
    def last(cls):
        return cls.select(cls.seq, cls.hash).order_by(cls.seq.desc()).first()

    @classmethod
    def matching(cls, actor_id=None, action=None, target=None):
        """Entries of one actor, action and/or target (None: any)."""
        query = cls.select()
        if actor_id is not None:
            query = query.where(cls.actor_id == actor_id)
        if action is not None:
            query = query.where(cls.action == action)
        if target is not None:
            query = query.where(cls.target == target)
        return query
