"""Pure domain: entities, value objects and rules. No I/O here."""
