"""Data-contract suites (YAML), read by orchestrator.data.contract_suites."""
