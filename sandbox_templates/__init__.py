"""Sandbox templates, one folder each, a data package read by :mod:`orchestrator.templates`."""
