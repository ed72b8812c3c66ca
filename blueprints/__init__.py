"""One blueprint per domain: parse with a schema, ask the domain code, dump."""
