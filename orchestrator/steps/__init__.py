"""The steps of a trial, each a function of the Trial that returns a frozen record.

The order, the fault-drill points, teardown and the report are :mod:`orchestrator.lifecycle`'s
business; each step here only does its own work and says what it established.
"""

from orchestrator.steps.admit import admit
from orchestrator.steps.data import prepare_data
from orchestrator.steps.observe import assess, monitor, run_workload
from orchestrator.steps.report import write_report
from orchestrator.steps.sandbox import attest, deploy, provision, teardown

__all__ = [
    "admit",
    "assess",
    "attest",
    "deploy",
    "monitor",
    "prepare_data",
    "provision",
    "run_workload",
    "teardown",
    "write_report",
]
