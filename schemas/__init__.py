"""JSON Schemas of the platform's documents, a data package read by :mod:`orchestrator.reports.schema`."""
