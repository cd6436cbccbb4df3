"""The Prefect 3.9 UI driven the way a sandbox administrator uses it, with Playwright (sync API).

Prefect 3.9 serves two interfaces: the React one under ``/v2`` (where the server's root address
leads a browser with no saved preference) and the older Vue one at the root paths. These helpers
drive ``/v2``, the one an administrator lands on from the URL ``regsandbox up`` prints.

What they rely on, chosen to survive cosmetic changes of the UI:
- roles and accessible names: the deployment's ``Run`` button and its ``Custom run`` menu item,
  the ``Submit`` button, the run page's tabs (``Logs``, ``Artifacts``), the ``View run`` link of
  the toast that confirms a submission;
- a parameter's ``<label>`` (its name, e.g. ``spec``), the ``Open menu`` button that follows it
  and its ``Use JSON Input`` item; the label's ``for`` names the element holding the parameter's
  CodeMirror editor (``.cm-content``);
- the request the form sends (``POST .../create_flow_run``), whose answer carries the new run's
  id and, when the server refuses the parameters, its reason;
- test ids the UI sets for its own tests: ``flow-run-artifacts-grid``, ``table-display``,
  ``markdown-display``; an artifact page's ``Raw`` tab and its panel;
- the first badge after the run page's breadcrumb, which is the run's state.

Parameters are changed in the parameter's JSON editor, never field by field in the generated
form: the form's labels are humanised field names (``Developer Window S``), nested objects are
titled by schema class (``WorkloadSpec``) and two fields can share a label (``Rows`` of the
synthetic and of the reference population), whereas a dotted path into the JSON is exact.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import expect

UI = "/v2"
TERMINAL_STATES = ("Completed", "Failed", "Crashed", "Cancelled", "TimedOut")
RUN_URL = re.compile(r"/runs/flow-run/([0-9a-f-]{36})")


@dataclass(frozen=True)
class Artifact:
    """One artifact of a flow run as its page in the UI shows it."""

    key: str
    type: str  # as the UI labels it: MARKDOWN (links are markdown too), TABLE, ...
    url: str
    text: str  # the rendered artifact, as the administrator reads it
    raw: str  # the Raw tab: the markdown source, or the table's rows as JSON
    rows: list[dict[str, str]] = field(default_factory=list)  # a table's rows, header -> cell
    links: list[str] = field(default_factory=list)  # the addresses a markdown artifact links to


def _ui(base: str, path: str) -> str:
    return f"{base.rstrip('/')}{UI}{path}"


def _shot(page: Any, screenshots: Path | None, name: str, full_page: bool = False) -> None:
    if screenshots is not None:
        # Sections still loading show grey placeholders; the picture waits for the content.
        expect(page.locator("[data-slot=skeleton]")).to_have_count(0, timeout=30_000)
        screenshots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshots / name), full_page=full_page)


def open_deployment(page: Any, base: str, name: str = "sandbox-trial", timeout_s: float = 120) -> str:
    """Open the deployment's page from the Deployments list; return its address.

    The list is reloaded until the deployment shows: the runner of ``regsandbox up`` registers
    it a little after the servers answer.
    """
    link = page.locator("a[href*='/deployments/deployment/']").filter(
        has_text=re.compile(f"^{re.escape(name)}$")
    )
    deadline = time.monotonic() + timeout_s
    page.goto(_ui(base, "/deployments"))
    while True:
        try:
            link.first.wait_for(timeout=5_000)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"deployment {name!r} not listed in the Prefect UI after {timeout_s:.0f}s"
                ) from None
            page.reload()
    link.first.click()
    page.wait_for_url(re.compile(r"/deployments/deployment/[0-9a-f-]{36}"))
    page.get_by_role("button", name="Run", exact=True).wait_for()
    return str(page.url)


def set_path(document: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``a.b.c`` in nested dicts; every step but the last must exist (a typo fails loudly)."""
    *parents, last = dotted.split(".")
    node = document
    for part in parents:
        if not isinstance(node.get(part), dict):
            raise KeyError(f"{dotted}: no object at {part!r}")
        node = node[part]
    if last not in node:
        raise KeyError(f"{dotted}: no field {last!r} in the prefilled value")
    node[last] = value


def _plain(value: Any) -> Any:
    """The value without the UI's ``{"__prefect_kind": "json", "value": "<text>"}`` wrappers.

    When a parameter switches to JSON input, nested values the form edited as JSON text (a
    mapping such as ``countries``) come back wrapped that way; the run must get plain JSON.
    """
    if isinstance(value, dict):
        if value.get("__prefect_kind") == "json" and isinstance(value.get("value"), str):
            return _plain(json.loads(value["value"]))
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _json_editor(page: Any, parameter: str) -> Any:
    """Switch the parameter to JSON input; return its editor's content element."""
    label = page.locator(f"xpath=//label[normalize-space()='{parameter}']")
    label.wait_for()
    menu = label.locator("xpath=following::button[.//*[normalize-space()='Open menu']][1]")
    menu.click()
    page.get_by_role("menuitem", name="Use JSON Input").click()
    editor = page.locator(f"[id='{label.get_attribute('for')}'] .cm-content")
    editor.wait_for()
    return editor


def _editor_text(editor: Any) -> str:
    # The document itself, through CodeMirror's view; the rendered lines as a fallback (CodeMirror
    # renders only the lines near the viewport, so a long document would come back cut).
    text = editor.evaluate("e => e.cmView ? e.cmView.view.state.doc.toString() : null")
    return str(text if text is not None else editor.inner_text())


def _write_editor(page: Any, editor: Any, value: Any, attempts: int = 3) -> None:
    """Replace the editor's document with ``value`` as JSON, and check that it holds."""
    text = json.dumps(value, indent=2)
    for _ in range(attempts):
        # The menu that switched the input hands focus back to its button a moment after it
        # closes, which can take it from the editor just clicked: focus is checked, and the write
        # checked and repeated.
        editor.click()
        expect(editor).to_be_focused()
        page.keyboard.press("ControlOrMeta+a")
        # insert_text types no keys, so the editor's bracket and quote completion stays out of it.
        page.keyboard.insert_text(text)
        try:
            if json.loads(_editor_text(editor)) == value:
                return
        except ValueError:
            pass
        page.wait_for_timeout(500)
    raise AssertionError(f"the JSON editor does not keep what was written; it holds:\n{_editor_text(editor)}")


def _submit(page: Any, attempts: int = 3) -> str:
    """Press Submit; return the id of the run the server created.

    A 503 is the Prefect server asking to retry (on SQLite, a write that met another one); the
    UI does not retry by itself but stays on the form with an error, and Submit is pressed
    again, as a person would.
    Any other refusal (a parameter the schema rejects, say) fails with the server's reason.
    """
    for attempt in range(1, attempts + 1):
        with page.expect_response(
            lambda r: r.request.method == "POST" and r.url.endswith("/create_flow_run")
        ) as answer:
            page.get_by_role("button", name="Submit", exact=True).click()
        response = answer.value
        if response.ok:
            return str(response.json()["id"])
        if response.status != 503 or attempt == attempts:
            raise AssertionError(f"the server refused the run ({response.status}): {response.text()}")
        page.wait_for_timeout(2_000)
    raise AssertionError("unreachable")


def start_custom_run(
    page: Any,
    base: str,
    changes: Mapping[str, Any],
    deployment: str = "sandbox-trial",
    run_name: str | None = None,
    screenshots: Path | None = None,
) -> str:
    """Start a custom run of the deployment with some prefilled parameters changed; return its id.

    ``changes`` maps dotted paths, the parameter's name first, to new values, e.g.
    ``{"spec.workload.developer_window_s": 20, "spec.data.synthetic.rows": 600}``. The browser
    ends on the new run's page. With ``screenshots``, ``prefect-deployment.png`` and
    ``prefect-custom-run.png`` (the form as submitted) are saved there.
    """
    open_deployment(page, base, deployment)
    _shot(page, screenshots, "prefect-deployment.png")
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Custom run").click()
    page.wait_for_url(re.compile(r"/deployments/deployment/[0-9a-f-]{36}/run"))
    name_box = page.get_by_label("Run Name")
    if run_name is not None:
        name_box.fill(run_name)
    # The form generates a name once the deployment has loaded; submitting earlier would send none.
    expect(name_box).not_to_have_value("", timeout=15_000)
    run_name = str(name_box.input_value())

    by_parameter: dict[str, dict[str, Any]] = {}
    for dotted, value in changes.items():
        parameter, _, rest = dotted.partition(".")
        by_parameter.setdefault(parameter, {})[rest] = value
    for parameter, paths in by_parameter.items():
        editor = _json_editor(page, parameter)
        value = _plain(json.loads(_editor_text(editor)))
        for path, new in paths.items():
            set_path(value, path, new)
        _write_editor(page, editor, value)
    _shot(page, screenshots, "prefect-custom-run.png", full_page=True)

    run_id = _submit(page)
    # The UI returns to the deployment and confirms with a toast linking to the run; the run's
    # own card on the page links there too, should the toast be gone already.
    to_run = page.get_by_role("link", name="View run").or_(
        page.get_by_role("link", name=run_name, exact=True)
    )
    to_run.first.click()
    page.wait_for_url(RUN_URL)
    found = RUN_URL.search(page.url)
    assert found and found.group(1) == run_id, (page.url, run_id)
    return run_id


def open_run(page: Any, base: str, run_id: str, tab: str | None = None) -> None:
    page.goto(_ui(base, f"/runs/flow-run/{run_id}") + (f"?tab={tab}" if tab else ""))


def run_state(page: Any) -> str:
    """The state the run page shows (its first badge after the breadcrumb; tags sit inside it)."""
    badge = page.locator("xpath=//nav[@aria-label='breadcrumb']/following::*[@data-slot='badge'][1]")
    return str(badge.inner_text(timeout=10_000)).strip()


def wait_for_state(
    page: Any,
    base: str,
    run_id: str,
    states: tuple[str, ...] = TERMINAL_STATES,
    timeout_s: float = 300,
    reload_every_s: float = 15,
) -> str:
    """Watch the run's page until it shows one of ``states``; return that state.

    The page refreshes itself; it is reloaded now and then all the same, so a missed update
    cannot stall the wait.
    """
    if RUN_URL.search(page.url) is None or run_id not in page.url:
        open_run(page, base, run_id)
    deadline = time.monotonic() + timeout_s
    reload_at = time.monotonic() + reload_every_s
    state = ""
    while time.monotonic() < deadline:
        state = run_state(page)
        if state in states:
            return state
        if time.monotonic() > reload_at:
            page.reload()
            reload_at = time.monotonic() + reload_every_s
        page.wait_for_timeout(1_000)
    raise TimeoutError(f"run {run_id} still {state!r} after {timeout_s:.0f}s, not one of {states}")


def _newest_logs_first(page: Any) -> None:
    # The log list renders only the rows near its top, so the newest must come first to be seen.
    order = page.get_by_role("combobox").filter(has_text=re.compile(r"^(Oldest to newest|Newest to oldest)$"))
    if str(order.inner_text()).strip() != "Newest to oldest":
        order.click()
        page.get_by_role("option", name="Newest to oldest").click()


def wait_for_log(
    page: Any, base: str, run_id: str, text: str, timeout_s: float = 120, reload_every_s: float = 4
) -> str:
    """Wait until the run's Logs tab shows a line containing ``text``; return that line's message."""
    open_run(page, base, run_id, "Logs")
    deadline = time.monotonic() + timeout_s
    line = page.get_by_role("tabpanel").get_by_text(text).first
    while True:
        _newest_logs_first(page)
        try:
            line.wait_for(timeout=reload_every_s * 1000)
            return str(line.inner_text()).strip()
        except Exception:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"no log line with {text!r} in run {run_id} after {timeout_s:.0f}s"
                ) from None
            page.reload()


def artifact_cards(page: Any, base: str, run_id: str) -> dict[str, tuple[str, str]]:
    """Open the run's Artifacts tab; return key -> (type, address of the artifact's page)."""
    open_run(page, base, run_id, "Artifacts")
    grid = page.get_by_test_id("flow-run-artifacts-grid")
    none = page.get_by_role("tabpanel").get_by_text("did not produce any artifacts")
    grid.or_(none).first.wait_for()
    cards: dict[str, tuple[str, str]] = {}
    if not grid.count():
        return cards
    for card in grid.locator("a[href*='/artifacts/artifact/']").all():
        key = str(card.get_by_role("heading").inner_text()).strip()
        kind = str(card.locator("[data-slot=card-header]").inner_text()).strip()
        cards[key] = (kind, f"{base.rstrip('/')}{card.get_attribute('href')}")
    return cards


# One artifact page's rendering, read at one instant: the page can render the artifact twice (a
# first time before all its data has arrived), and reads spread over both could disagree.
_SNAPSHOT = """() => {
  const shown = document.querySelector('[data-testid=table-display], [data-testid=markdown-display]');
  if (!shown) return null;
  const table = shown.dataset.testid === 'table-display' ? shown.querySelector('table') : null;
  const cells = (row) => [...row.querySelectorAll('th, td')].map((c) => c.innerText.trim());
  return {
    text: shown.innerText.trim(),
    links: [...shown.querySelectorAll('a[href]')].map((a) => a.href),
    rows: table ? [...table.querySelectorAll('tr')].map(cells) : [],
  };
}"""


def read_artifact(page: Any, key: str, kind: str, url: str, timeout_s: float = 30) -> Artifact:
    """Open one artifact's page and read it as rendered, then its Raw tab.

    The rendering is read until it holds something and reads the same twice in a row.
    """
    page.goto(url)
    deadline = time.monotonic() + timeout_s
    last: dict[str, Any] | None = None
    while True:
        snapshot = page.evaluate(_SNAPSHOT)
        if snapshot and snapshot["text"] and snapshot == last:
            break
        assert time.monotonic() < deadline, f"artifact {key} at {url} never settled: {snapshot}"
        last = snapshot
        page.wait_for_timeout(300)
    header, *body = snapshot["rows"] or [[]]
    rows = [dict(zip(header, cells, strict=True)) for cells in body]
    page.get_by_role("tab", name="Raw").click()
    raw = str(page.get_by_role("tabpanel", name="Raw").inner_text()).strip()
    return Artifact(
        key=key, type=kind, url=url, text=snapshot["text"], raw=raw, rows=rows, links=snapshot["links"]
    )


def read_artifacts(
    page: Any, base: str, run_id: str, keys: tuple[str, ...] | None = None, screenshots: Path | None = None
) -> dict[str, Artifact]:
    """Read the run's artifacts (all, or those of ``keys``) from its Artifacts tab.

    With ``screenshots``, the run page on its Artifacts tab is saved as
    ``prefect-run-artifacts.png`` there. The browser ends on the last artifact's page.
    """
    cards = artifact_cards(page, base, run_id)
    _shot(page, screenshots, "prefect-run-artifacts.png", full_page=True)
    wanted = cards if keys is None else {k: cards[k] for k in keys if k in cards}
    missing = set(keys or ()) - set(cards)
    assert not missing, f"run {run_id} has no artifact {sorted(missing)}; it has {sorted(cards)}"
    return {key: read_artifact(page, key, kind, url) for key, (kind, url) in wanted.items()}


def wait_for_artifact(
    page: Any, base: str, run_id: str, key: str, timeout_s: float = 60, reload_every_s: float = 3
) -> Artifact:
    """Reload the run's Artifacts tab until an artifact with ``key`` shows, then read it.

    For artifacts attached after the run ended, such as a decision another part of the platform
    records against the same flow run.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        cards = artifact_cards(page, base, run_id)
        if key in cards:
            return read_artifact(page, key, *cards[key])
        if time.monotonic() > deadline:
            raise TimeoutError(f"no artifact {key!r} on run {run_id} after {timeout_s:.0f}s: {sorted(cards)}")
        page.wait_for_timeout(reload_every_s * 1000)


def attach_note(api_url: str, run_id: str, key: str, markdown: str, description: str = "") -> str:
    """Attach a markdown artifact to a flow run through the Prefect API; return the artifact's id.

    The UI cannot add one; this is what another component (or an administrator's script) does
    to leave a note on a run, and what ``wait_for_artifact`` then finds in the UI.
    """
    answer = httpx.post(
        f"{api_url.rstrip('/')}/artifacts/",
        json={
            "key": key,
            "type": "markdown",
            "data": markdown,
            "description": description,
            "flow_run_id": run_id,
        },
        timeout=10,
    )
    answer.raise_for_status()
    return str(answer.json()["id"])
