"""The portal under concurrent regulators: every page, download and decision answered, none lost.

Real components: the platform application served by uvicorn on a loopback port, its SQLite
store, a real signed report (with its PDF) seeded as in tests/portal. ``REGULATORS`` regulators
(Thailand and Singapore, half each) sign in at once, each through the form with its CSRF token,
then each does ``ROUNDS`` times what a regulator does: list the trials, open the trial, download
the report JSON and PDF, verify the report by upload, and record a decision. Afterwards no
request was answered with a 5xx, every download was the stored bytes, each jurisdiction's
decisions are numbered 1..n without a gap or a repeat, and the audit chain is intact.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from orchestrator.api.app import create_app
from orchestrator.api.auth import create_user
from orchestrator.reports.writer import JSON_NAME, PDF_NAME
from orchestrator.settings import Settings
from orchestrator.store import Decision, audit, session_scope
from tests.load.test_gateway_load import _free_port
from tests.portal.seed import PASSWORD, form_value, seed, write_sample

pytestmark = pytest.mark.slow

REGULATORS, ROUNDS = 12, 3


@pytest.fixture()
def portal(tmp_path: Path) -> Iterator[dict[str, Any]]:
    settings = Settings(home=tmp_path / "home")
    trial_id = seed(settings, write_sample(tmp_path / "report", pdf=True))
    people = [f"reg-{'th' if n % 2 else 'sg'}-{n:02d}" for n in range(REGULATORS)]
    with session_scope(settings) as db:
        for name in people:
            create_user(db, "test", name, PASSWORD, "regulator", jurisdiction=name[4:6].upper())
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the platform did not start"
        time.sleep(0.05)
    yield {"url": f"http://127.0.0.1:{port}", "settings": settings, "trial_id": trial_id, "people": people}
    server.should_exit = True
    thread.join(timeout=10)


def test_concurrent_regulators_are_all_served_and_no_decision_is_lost(portal: dict[str, Any]) -> None:
    settings, trial_id = portal["settings"], portal["trial_id"]
    stored = {
        "json": (settings.reports_dir / trial_id / JSON_NAME).read_bytes(),
        "pdf": (settings.reports_dir / trial_id / PDF_NAME).read_bytes(),
    }
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    problems: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(REGULATORS)

    def regulator(name: str) -> None:
        with httpx.Client(base_url=portal["url"], timeout=120) as browser:

            def call(label: str, method: str, path: str, **kw: Any) -> httpx.Response:
                began = time.perf_counter()
                reply = browser.request(method, path, follow_redirects=False, **kw)
                with lock:
                    latencies.append((time.perf_counter() - began) * 1000)
                    statuses[f"{label} {reply.status_code}"] += 1
                return reply

            page = call("sign-in page", "GET", "/portal/login")
            start.wait(timeout=60)  # everyone signs in at the same moment
            data = {
                "username": name,
                "password": PASSWORD,
                "signin_token": form_value(page.text, "signin_token"),
            }
            if call("sign in", "POST", "/portal/login", data=data).status_code != 303:
                problems.append(f"{name} could not sign in")
                return
            for _ in range(ROUNDS):
                call("list", "GET", "/portal/")
                trial = call("trial page", "GET", f"/portal/trials/{trial_id}")
                for kind in ("json", "pdf"):
                    got = call(f"download {kind}", "GET", f"/portal/trials/{trial_id}/download/{kind}")
                    if got.content != stored[kind]:
                        problems.append(f"{name}: download {kind} differs ({got.status_code})")
                files = {"report": ("report.json", stored["json"], "application/json")}
                csrf = form_value(trial.text, "csrf")
                call("verify", "POST", "/portal/verify", data={"csrf": csrf}, files=files)
                decided = call(
                    "decision",
                    "POST",
                    f"/portal/trials/{trial_id}/decision",
                    data={"decision": "approve", "comment": "", "csrf": csrf},
                )
                if decided.status_code != 303:
                    problems.append(f"{name}: decision answered {decided.status_code}")

    began = time.monotonic()
    threads = [threading.Thread(target=regulator, args=(name,)) for name in portal["people"]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    wall = time.monotonic() - began

    assert not problems, problems[:5]
    assert not [k for k in statuses if k.split()[-1].startswith("5")], statuses
    with session_scope(settings) as db:
        decisions = list(db.scalars(select(Decision).where(Decision.trial_id == trial_id)))
        assert audit.verify(db).intact
    for code in ("TH", "SG"):
        numbers = sorted(d.seq for d in decisions if d.jurisdiction == code)
        assert numbers == list(range(1, REGULATORS // 2 * ROUNDS + 1)), (code, numbers)
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    print(
        f"portal load: {REGULATORS} regulators x {ROUNDS} rounds, {len(latencies)} requests in {wall:.1f} s; "
        f"latency p50 {pct(50):.0f} ms, p95 {pct(95):.0f} ms, p99 {pct(99):.0f} ms, "
        f"mean {statistics.mean(latencies):.0f} ms; {len(decisions)} decisions, numbered without gaps; "
        f"statuses {dict(sorted(statuses.items()))}"
    )
