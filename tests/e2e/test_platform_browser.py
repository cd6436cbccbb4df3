"""The administrator's path through the real Prefect UI, in a real browser (Debian chromium, Playwright).

``regsandbox up`` runs the whole platform on free ports with a fresh home; the administrator
opens the ``sandbox-trial`` deployment in the Prefect UI, starts a custom run of the prefilled
sample trial with a short developer window and a small population, watches the run to its end
and reads what it published: the verdict table and the summary naming the trial's endpoint
under the platform's address. The screenshots of the deployment, the form as submitted and the
finished run are kept under ``docs/screenshots/``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator.spec import load_spec
from orchestrator.trial import trial_id_for
from tests.e2e import prefect_ui as ui
from tests.e2e.servers import free_port as _free_port
from tests.e2e.servers import start_up

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
SAMPLE = ROOT / "examples" / "trials" / "diabetes-risk.yaml"
WINDOW_S = 40
ROWS = 600
PASSWORD = "a-long-test-password"
FEATURES = ["age", "sex", "bmi", "systolic_bp", "smoking", "family_history"]
DEVELOPER_CALLS = 5
PEOPLE = [
    {"username": "acme-dev", "password": PASSWORD, "role": "developer", "sponsor": "acme-health"},
    {"username": "sg-regulator", "password": PASSWORD, "role": "regulator", "jurisdiction": "SG"},
]
DEVELOPER_TOKEN: list[str] = []
JURISDICTIONS = ["SG", "MY", "TH", "ID", "PH", "VN"]


@dataclass(frozen=True)
class Stack:
    """A running ``regsandbox up``: its addresses, and the administrator's password it printed."""

    prefect: str
    mlflow: str
    platform: str
    admin_password: str
    home: Path
    output: Path
    ports: tuple[int, int, int]
    pid: int

    @property
    def prefect_api(self) -> str:
        return f"{self.prefect}/api"

    def said(self) -> str:
        return self.output.read_text(errors="replace")


def _wait_for_output(output: Path, text: str, process: subprocess.Popen[bytes], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        said = output.read_text(errors="replace")
        if text in said:
            return said
        assert process.poll() is None, f"regsandbox up exited early:\n{said[-3000:]}"
        time.sleep(0.5)
    raise TimeoutError(f"regsandbox up never said {text!r}:\n{output.read_text(errors='replace')[-3000:]}")


@contextmanager
def running_stack(tmp_path: Path) -> Iterator[Stack]:
    """``regsandbox up`` from this checkout on free ports; stopped by ``regsandbox down`` on exit."""
    prefect_port, mlflow_port, api_port = _free_port(), _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "REGSANDBOX_"))}
    env["REGSANDBOX_HOME"] = str(tmp_path / "home")
    # The runner's flow runs import ``flows`` and ``orchestrator`` from this checkout too.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    output = tmp_path / "up.log"
    ports = (prefect_port, mlflow_port, api_port)
    up = start_up([sys.executable, "-m", "orchestrator.cli"], ports, env, ROOT, output)
    try:
        # Printed once the sample candidate is registered, just before the deployments are served.
        said = _wait_for_output(output, "serving the flows", up, timeout=300)
        password = re.search(r"administrator\s+admin / (\S+)", said)
        assert password, said
        yield Stack(
            prefect=f"http://127.0.0.1:{prefect_port}",
            mlflow=f"http://127.0.0.1:{mlflow_port}",
            platform=f"http://127.0.0.1:{api_port}",
            admin_password=password.group(1),
            home=tmp_path / "home",
            output=output,
            ports=(prefect_port, mlflow_port, api_port),
            pid=up.pid,
        )
    finally:
        # ``regsandbox down``, not Ctrl-C: a process started in the background by a shell without
        # job control inherits SIGINT ignored, and would sit through a SIGINT. SIGKILL only if
        # down could not stop it, so that no server outlives the test.
        down = subprocess.run(
            [sys.executable, "-m", "orchestrator.cli", "down"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        try:
            up.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait(timeout=30)
        with output.open("a") as log:
            log.write(f"\n--- regsandbox down ({down.returncode}):\n{down.stdout}{down.stderr}")


def _window_opened_at(stack: Stack, run_id: str) -> dt.datetime:
    """When the run logged that its endpoint opened for developer traffic (the server's record)."""
    answer = httpx.post(
        f"{stack.prefect_api}/logs/filter",
        json={"logs": {"flow_run_id": {"any_": [run_id]}}, "sort": "TIMESTAMP_ASC", "limit": 200},
        timeout=10,
    )
    answer.raise_for_status()
    for record in answer.json():
        if "endpoint open for developer traffic" in record["message"]:
            return dt.datetime.fromisoformat(record["timestamp"])
    raise AssertionError(f"run {run_id} never logged its developer window")


def during_the_observation_window(stack: Stack, run_id: str, trial_id: str, closes_at: dt.datetime) -> None:
    """What a developer does while the trial's endpoint is open.

    Called once, as soon as the run's Logs tab shows that the endpoint is open for developer
    traffic: the run is then in its ``run-workload`` task until ``closes_at`` (UTC), and the
    platform forwards ``{stack.platform}/trials/{trial_id}/`` to the trial's sandbox. Requests
    sent from here are measured apart as developer traffic. The test checks that this returns
    before ``closes_at``.

    The developer is a person the administrator creates through the API; its endpoint token comes
    from the API (shown once) and the calls are plain HTTP in the MLflow scoring protocol.
    """
    api = httpx.Client(base_url=stack.platform, timeout=30)
    admin = _token(api, "admin", stack.admin_password)
    for person in PEOPLE:
        created = api.post("/api/users", json=person, headers=_auth(admin))
        assert created.status_code == 201, created.text
    developer = _token(api, "acme-dev", PASSWORD)
    issued = api.post(f"/api/trials/{trial_id}/endpoint-tokens", headers=_auth(developer))
    assert issued.status_code in (200, 201), issued.text
    token = issued.json()["token"]
    body = {
        "dataframe_split": {
            "columns": FEATURES,
            "data": [[55, "female", 31.5, 142.0, 0, 1], [38, "male", 23.0, 118.0, 1, 0]],
        }
    }
    for _ in range(DEVELOPER_CALLS):
        reply = httpx.post(
            f"{stack.platform}/trials/{trial_id}/invocations", json=body, headers=_auth(token), timeout=30
        )
        assert reply.status_code == 200, reply.text
        assert len(reply.json()["predictions"]) == 2
    # The token opens this trial only.
    other = httpx.post(
        f"{stack.platform}/trials/another-trial-0000/invocations", json=body, headers=_auth(token)
    )
    assert other.status_code == 401, other.text
    DEVELOPER_TOKEN.append(token)


def _token(api: httpx.Client, username: str, password: str) -> str:
    answer = api.post("/api/auth/token", json={"username": username, "password": password})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["token"])


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def regulator_in_the_portal(browser: Any, stack: Stack, trial_id: str, shots: Path) -> None:
    """A regulator of SG on a phone: signs in, downloads the PDF, verifies the JSON, decides."""
    page = browser.new_page(viewport={"width": 375, "height": 812}, accept_downloads=True)
    try:
        page.goto(f"{stack.platform}/portal/trials/{trial_id}")
        page.get_by_label("Username").fill("sg-regulator")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"**/portal/trials/{trial_id}")
        assert page.get_by_role("heading", name="Verdict for Singapore (SG)").is_visible()
        page.screenshot(path=str(shots / "portal-trial.png"))
        with page.expect_download() as pdf:
            page.get_by_role("link", name="Report, PDF").click()
        pdf_path = shots / "report.pdf"
        pdf.value.save_as(pdf_path)
        assert pdf_path.read_bytes().startswith(b"%PDF")
        with page.expect_download() as report:
            page.get_by_role("link", name="Report, JSON (the signed document)").click()
        json_path = shots / "report.json"
        report.value.save_as(json_path)
        page.get_by_role("link", name="Verify a report").click()
        page.get_by_label("Report file (JSON)").set_input_files(str(json_path))
        page.get_by_role("button", name="Verify").click()
        assert "intact" in page.content().lower()
        page.screenshot(path=str(shots / "portal-verified.png"))
        page.goto(f"{stack.platform}/portal/trials/{trial_id}")
        page.get_by_label("Approve with conditions").check()
        page.get_by_label("Comment").fill("Recalibrate on the Singapore population before deployment.")
        page.get_by_role("button", name="Record and sign the decision").click()
        assert "was recorded and signed" in page.get_by_role("status").inner_text()
        page.screenshot(path=str(shots / "portal-decision.png"), full_page=True)
    finally:
        page.close()


def _publish_screenshots(shots: Path) -> list[Path]:
    """Copy the screenshots into the docs, as palette PNGs (a UI needs few colours; a third of the size)."""
    from PIL import Image

    DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    published = []
    for shot in sorted(shots.glob("prefect-*.png")):
        target = DOCS_SCREENSHOTS / shot.name
        with Image.open(shot) as image:
            palette = image.convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE)
            palette.save(target, optimize=True)
        published.append(target)
    return published


def test_an_administrator_runs_the_sample_trial_from_the_prefect_ui(
    docker_client: Any, browser: Any, tmp_path: Path
) -> None:
    shots = tmp_path / "screenshots"
    expected = load_spec(SAMPLE).model_dump(mode="json")
    expected["workload"]["developer_window_s"] = WINDOW_S
    expected["data"]["synthetic"]["rows"] = ROWS
    with running_stack(tmp_path) as stack:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        try:
            run_id = ui.start_custom_run(
                page,
                stack.prefect,
                {"spec.workload.developer_window_s": WINDOW_S, "spec.data.synthetic.rows": ROWS},
                screenshots=shots,
            )
            # The run got the prefilled trial with exactly the two changes: nothing the form
            # carries for itself (such as its wrapping of JSON-edited values) leaks into it.
            sent = httpx.get(f"{stack.prefect_api}/flow_runs/{run_id}", timeout=10).json()["parameters"]
            assert sent["spec"] == expected, sent
            trial_id = trial_id_for(expected["name"], run_id)

            ui.wait_for_log(page, stack.prefect, run_id, "endpoint open for developer traffic", timeout_s=180)
            closes_at = _window_opened_at(stack, run_id) + dt.timedelta(seconds=WINDOW_S)
            assert dt.datetime.now(dt.UTC) < closes_at, "the UI showed the window only after it closed"
            during_the_observation_window(stack, run_id, trial_id, closes_at)
            assert dt.datetime.now(dt.UTC) < closes_at, "the developer's part outlasted the window"

            state = ui.wait_for_state(page, stack.prefect, run_id, timeout_s=180)
            assert state == "Completed", f"run {run_id} ended {state}:\n{stack.said()[-3000:]}"
            artifacts = ui.read_artifacts(
                page,
                stack.prefect,
                run_id,
                keys=("trial-summary", "verdicts", "exit-report", "mlflow-run"),
                screenshots=shots,
            )
            verdicts = artifacts["verdicts"].rows
            assert [row["jurisdiction"] for row in verdicts] == JURISDICTIONS, verdicts
            assert {row["verdict"] for row in verdicts} <= {"pass", "conditional", "fail"}, verdicts
            summary = artifacts["trial-summary"]
            assert f"Trial {trial_id}: completed" in summary.text, summary.text
            assert f"Developer endpoint: {stack.platform}/trials/{trial_id}/" in summary.text, summary.text
            assert f"`{stack.platform}/trials/{trial_id}/`" in summary.raw, summary.raw
            assert "Teardown verified." in summary.text, summary.text
            for row in verdicts:  # the summary repeats the table the administrator reads first
                assert f"{row['jurisdiction']}\t{row['verdict']}" in summary.text, summary.text
            portal = f"{stack.platform}/portal/trials/{trial_id}"
            assert artifacts["exit-report"].links == [portal]
            assert portal in summary.links
            assert artifacts["mlflow-run"].links[0].startswith(f"{stack.mlflow}/#/experiments/")

            # The developer's calls are in the trial's metrics, apart from the evaluation's.
            api = httpx.Client(base_url=stack.platform, timeout=30)
            metrics = api.get(
                f"/api/trials/{trial_id}/metrics", headers=_auth(_token(api, "acme-dev", PASSWORD))
            )
            assert metrics.status_code == 200, metrics.text
            values = metrics.json()["values"]
            assert values["developer/ops/requests"] == DEVELOPER_CALLS, values
            # The window has closed: the same token is refused now.
            late = httpx.post(
                f"{stack.platform}/trials/{trial_id}/invocations", json={}, headers=_auth(DEVELOPER_TOKEN[-1])
            )
            assert late.status_code in (401, 409), late.text

            regulator_in_the_portal(browser, stack, trial_id, shots)
            # The regulator's signed decision shows on the Prefect run.
            decision = ui.wait_for_artifact(page, stack.prefect, run_id, f"decision-{trial_id}-sg")
            assert (
                "approve_with_conditions" in decision.raw.replace(" ", "_") or "conditions" in decision.raw
            ), decision
        except Exception as exc:
            raise AssertionError(f"{exc}\n--- regsandbox up said:\n{stack.said()[-4000:]}") from exc
        finally:
            page.close()
    said = stack.said()
    assert f"regsandbox down (0):\nstopped the platform (pid {stack.pid})" in said, said[-3000:]
    for port in stack.ports:
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still served after stop"
    assert {p.name for p in shots.glob("*.png")} >= {
        "prefect-custom-run.png",
        "prefect-deployment.png",
        "prefect-run-artifacts.png",
        "portal-trial.png",
        "portal-verified.png",
        "portal-decision.png",
    }
    # Refreshing the documentation's copies is asked for, never a side effect of a test run.
    if os.environ.get("REGSANDBOX_DOCS_SCREENSHOTS") == "1":
        _publish_screenshots(shots)
