"""Use cases: each takes the caller, validated input and the ports it needs."""
