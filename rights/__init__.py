"""The user's rights (policy §5): export, correction, erasure, and the
k-anonymous statistics that count users without naming them."""
