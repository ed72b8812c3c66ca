"""Authentication: password hashing, JWT sessions and their revocation."""
