"""Jurisdiction policy profiles (YAML), a data package read by :mod:`orchestrator.policy`."""
