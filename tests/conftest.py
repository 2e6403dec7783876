"""Shared pytest configuration for the engine tests (run from the repository root: ``python3 -m pytest``).

Kept minimal on purpose: fixtures that several test modules need go here.
"""
