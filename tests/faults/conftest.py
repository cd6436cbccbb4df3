"""Fixtures shared with the lifecycle tests: the FAKE backend's settings and its model directory."""

from tests.unit.test_lifecycle import fake_model, lifecycle_settings  # noqa: F401 - pytest fixtures
