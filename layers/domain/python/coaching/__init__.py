"""Coaching platform domain layer."""
