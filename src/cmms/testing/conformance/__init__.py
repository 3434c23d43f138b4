"""Test suites every backend of a repository interface must pass."""
