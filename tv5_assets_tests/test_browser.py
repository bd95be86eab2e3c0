"""A real browser on the real UI: start `dagster dev` on loopback, press "Materialize all" in
headless Chromium, wait for the run, then read the asset catalog and a checks tab.

Screenshots are kept in `artifacts/browser/` (override with TV5_ARTIFACTS_DIR) for people to look at.
Debian's Chromium is driven by Playwright through an explicit executable path: no browser download.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._core.loader import LoadingContextForTest

from tv5_assets.definitions import defs
from tv5_assets_tests.conftest import REPO
from tv5_assets_tests.services import free_port

CHROMIUM = Path(os.environ.get("TV5_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(os.environ.get("TV5_ARTIFACTS_DIR", REPO / "artifacts" / "browser"))
# Chromium as this machine runs it: no sandbox as root, and no background calls to a network it cannot reach.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]
LOCATION = "tv5_assets.definitions"

pytestmark = [pytest.mark.browser, pytest.mark.neo4j]


@pytest.fixture(scope="module")
def dagster_ui(neo4j_server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, dict]]:
    """`dagster dev` on loopback with its own instance and data lake (the graph asset loads the shared
    local Neo4j, held through `neo4j_server`'s lock like every graph test)."""
    if not CHROMIUM.exists():
        message = f"no Chromium at {CHROMIUM}: install Debian's chromium (scripts/setup --test does)"
        if os.environ.get("TV5_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    base = tmp_path_factory.mktemp("ui")
    home = base / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("")
    # in-process runs: the UI and its buttons are what is under test, not the step subprocesses (on 2 cores
    # the ~90 step processes of a whole-graph run would cost minutes of imports)
    env = {**os.environ, "DAGSTER_HOME": str(home), "TV5_DATA_DIR": str(base / "data"), "HF_HUB_OFFLINE": "1",
           "TV5_EXECUTOR": "in_process"}
    port = free_port()
    # `dagster dev`, as users run it: the webserver plus the daemon that launches queued runs.
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
        cwd=REPO, env=env, stdout=open(base / "webserver.log", "wb"), stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"{url}/server_info", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"dagster-webserver did not start: {(base / 'webserver.log').read_text()[-3000:]}")
                time.sleep(1)
        yield url, home, env
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def _dismiss_welcome(page) -> None:
    """The UI greets a new instance with a community dialog; skip it when it shows up."""
    try:
        page.get_by_role("button", name="Skip").click(timeout=8_000)
    except Exception:  # noqa: BLE001 - no dialog this time
        pass


def _stale_statuses(home: Path) -> dict[str, StaleStatus]:
    """What the UI shows as synced / unsynced, read from the same instance."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        graph = defs.resolve_asset_graph()
        resolver = CachingStaleStatusResolver(instance, graph, LoadingContextForTest(instance))
        return {key.to_user_string(): resolver.get_status(key) for key in graph.materializable_asset_keys}


def _change_availability_rules(env: dict) -> None:
    """The walkthrough's config change, from the command line: availability with another seed."""
    config = Path(env["TV5_DATA_DIR"]).parent / "availability-seed.yaml"
    config.write_text("ops:\n  availability:\n    config:\n      seed: 4242\n")
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", LOCATION,
         "--select", "availability", "-c", str(config)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def _wait_for_runs(home: Path, timeout_s: float = 900) -> list[dg.DagsterRun]:
    """Every run of the instance, once all have finished (the UI's run first)."""
    instance = dg.DagsterInstance.from_config(str(home))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = instance.get_runs()
        if runs and all(run.is_finished for run in runs):
            return list(reversed(runs))
        time.sleep(3)
    raise AssertionError(f"the run launched from the UI did not finish within {timeout_s} s")


def test_materialize_all_from_the_ui_then_read_assets_and_checks(dagster_ui: tuple[str, Path, dict]) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, home, env = dagster_ui
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    asset_keys = sorted(defs.resolve_asset_graph().materializable_asset_keys)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(60_000)
        expect.set_options(timeout=30_000)

        # 1. Materialize all, from the global lineage page
        page.goto(f"{url}/asset-groups", wait_until="networkidle")
        _dismiss_welcome(page)
        page.get_by_role("button", name="Materialize all").first.click()
        expect(page.get_by_text("Launched run")).to_be_visible(timeout=120_000)
        runs = _wait_for_runs(home)
        assert [run.status for run in runs] == [dg.DagsterRunStatus.SUCCESS], runs
        assert set(_stale_statuses(home).values()) == {StaleStatus.FRESH}

        page.goto(f"{url}/locations/{LOCATION}/asset-groups/movielens", wait_until="networkidle")
        expect(page.get_by_text("ratings", exact=True).first).to_be_visible()
        expect(page.get_by_text("5 / 5 Passed").first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "movielens-lineage.png"))

        # 2. The catalog lists every asset, each linking to its page (milvus/media_vectors at /assets/milvus/...).
        # The catalog renders only the rows in view (a virtualised list): a tall window shows all of them.
        page.set_viewport_size({"width": 1600, "height": 200 * len(asset_keys)})
        page.goto(f"{url}/assets", wait_until="networkidle")
        for key in asset_keys:
            expect(page.locator(f'a[href="/assets/{"/".join(key.path)}"]').first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "asset-catalog.png"), full_page=True)
        page.set_viewport_size({"width": 1600, "height": 1000})

        # 3. One asset's checks tab: every check rendered, all succeeded
        page.goto(f"{url}/assets/ratings?view=checks", wait_until="networkidle")
        for check in ("unique_key", "rating_domain", "movie_id_in_movies", "kept_plus_rejected_equals_read"):
            expect(page.get_by_text(check, exact=True).first).to_be_visible()
        expect(page.get_by_text("Succeeded").first).to_be_visible()
        assert page.get_by_text("Failed", exact=True).count() == 0
        page.screenshot(path=str(ARTIFACTS / "ratings-checks.png"))

        # 4. Change the availability rules: the stores that read availability show as unsynced
        _change_availability_rules(env)
        unsynced = {k for k, status in _stale_statuses(home).items() if status == StaleStatus.STALE}
        assert unsynced == {"milvus/media_vectors", "milvus/hybrid_media_vectors", "graph"}
        page.goto(f"{url}/locations/{LOCATION}/asset-groups/vector_store", wait_until="networkidle")
        expect(page.get_by_text("Unsynced").first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "unsynced.png"))

        # 5. "Materialize unsynced" (the menu beside "Materialize all") rebuilds just those three
        page.goto(f"{url}/asset-groups", wait_until="networkidle")
        page.locator('button:right-of(:text("Materialize all"))').first.click()
        page.get_by_text("Materialize unsynced").first.click()
        dialog = page.get_by_role("dialog").filter(has_text="Materialize unsynced assets")
        for name in ("graph", "milvus / media_vectors", "milvus / hybrid_media_vectors"):
            expect(dialog.get_by_text(name, exact=True).first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "materialize-unsynced-dialog.png"))
        dialog.get_by_role("button", name="Materialize 3 assets").click()
        expect(page.get_by_text("Launched run")).to_be_visible(timeout=120_000)
        runs = _wait_for_runs(home)
        assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs), runs
        rebuilt = set().union(*(run.asset_selection or set() for run in runs[2:]))
        assert {key.to_user_string() for key in rebuilt} == unsynced
        assert set(_stale_statuses(home).values()) == {StaleStatus.FRESH}
        page.goto(f"{url}/locations/{LOCATION}/asset-groups/vector_store", wait_until="networkidle")
        expect(page.get_by_text(re.compile(r"^(\d+) / \1 Passed$")).first).to_be_visible()
        assert page.get_by_text("Unsynced").count() == 0
        page.screenshot(path=str(ARTIFACTS / "after-materialize-unsynced.png"))
        browser.close()
    shots = ("movielens-lineage.png", "asset-catalog.png", "ratings-checks.png", "unsynced.png",
             "materialize-unsynced-dialog.png", "after-materialize-unsynced.png")
    assert all((ARTIFACTS / name).stat().st_size > 10_000 for name in shots)
