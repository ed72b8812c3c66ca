"""Hash chains for append-only logs (the consent ledger, the staff audit
log): each entry's hash covers its fields and the previous entry's hash,
so an edited, inserted or deleted entry breaks every hash after it."""
import hashlib
import json

GENESIS = "0" * 64


def chain_hash(fields):
    """SHA-256 of ``fields`` (a dict of JSON values, ``prev_hash`` among
    them) in canonical JSON: keys sorted, no spaces."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
