"""Integration fixtures live in tests/world.py, shared with the end-to-end tier."""
