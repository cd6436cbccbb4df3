"""Evidence a trial derives from what a backend observes of its sandbox."""

from __future__ import annotations

from orchestrator.sandbox_evidence import unexpected_processes

SERVER = "4100 4080 4100 10001 python -m mlflow models serve -m /model"
WORKER = "4120 4100 4100 10001 python -m mlflow models serve -m /model"


def test_the_server_and_its_workers_are_expected() -> None:
    assert unexpected_processes([SERVER, WORKER], [SERVER, WORKER]) == []


def test_a_detached_process_is_unexpected_even_if_it_started_before_deploy() -> None:
    daemon = "4150 4100 4150 10001 python -m mlflow models serve -m /model"  # forked: same args
    assert unexpected_processes([SERVER, WORKER, daemon], [SERVER, WORKER, daemon]) == [daemon]


def test_a_command_started_while_serving_is_unexpected() -> None:
    tool = "4300 4120 4100 10001 /bin/sh -c curl http://10.0.0.1"
    assert unexpected_processes([SERVER, WORKER, tool], [SERVER, WORKER]) == [tool]


def test_a_detached_process_reparented_outside_the_sandbox_is_unexpected() -> None:
    daemon = "4150 1 4150 10001 sleep 600"
    assert unexpected_processes([SERVER, WORKER, daemon], [SERVER, WORKER]) == [daemon]


def test_without_a_listing_at_deploy_only_detached_processes_are_flagged() -> None:
    daemon = "4150 4100 4150 10001 sleep 600"
    assert unexpected_processes([SERVER, WORKER, daemon], None) == [daemon]


def test_an_unreadable_line_is_reported_rather_than_dropped() -> None:
    assert unexpected_processes([SERVER, "garbled"], [SERVER]) == ["garbled"]
