"""A real browser on the real UI of the team stack (`scripts/services start team`: the webserver and the
daemon on one code server, runs stored in Postgres; the session's private stack, tests/team_support.py):
press "Materialize all" in headless Chromium, wait for the run, then read the asset catalog and a checks tab.

Screenshots are kept in `artifacts/browser/` (override with TV5_ARTIFACTS_DIR) for people to look at.
Debian's Chromium is driven by Playwright through an explicit executable path: no browser download.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._core.loader import LoadingContextForTest

from tv5_assets.definitions import defs
from tv5_assets.local_services.dagster_stack import LOCATION_NAME
from tv5_assets_tests.conftest import REPO
from tv5_assets_tests.dagster_runs import launch, workload
from tv5_assets_tests.team_support import TeamStack

CHROMIUM = Path(os.environ.get("TV5_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(os.environ.get("TV5_ARTIFACTS_DIR", REPO / "artifacts" / "browser"))
# Chromium as this machine runs it: no sandbox as root, and no background calls to a network it cannot reach.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]
LOCATION = LOCATION_NAME  # the team stack's code location (its gRPC server)
WHOLE_GRAPH = sorted(defs.resolve_job_def("whole_graph").asset_layer.selected_asset_keys)

# extended: 550 s of CI's 30 minutes on the slowest host (session 18); `scripts/test -m extended` runs it
pytestmark = [pytest.mark.browser, pytest.mark.team_stack, pytest.mark.extended]


@dataclass
class UI:
    url: str
    instance: dg.DagsterInstance
    env: dict[str, str]
    home: Path
    since: dt.datetime  # runs created before this are other tests'


@pytest.fixture(scope="module")
def dagster_ui(team_stack: TeamStack) -> Iterator[UI]:
    """The team stack's webserver; its runs read and write the stack's own data lake (TV5_DATA_DIR), its own
    Neo4j and Milvus server. In-process runs (TV5_EXECUTOR=in_process in the stack): the UI and its buttons
    are what is under test, not the step subprocesses."""
    if not CHROMIUM.exists():
        message = f"no Chromium at {CHROMIUM}: install Debian's chromium (scripts/setup --test does)"
        if os.environ.get("TV5_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    yield UI(team_stack.url, team_stack.instance, team_stack.environment(), team_stack.home,
             dt.datetime.now(dt.UTC))


def _dismiss_welcome(page) -> None:
    """The UI greets a new instance with a community dialog; skip it when it shows up."""
    try:
        page.get_by_role("button", name="Skip").click(timeout=8_000)
    except Exception:  # noqa: BLE001 - no dialog this time
        pass


def _stale_statuses(instance: dg.DagsterInstance) -> dict[str, StaleStatus]:
    """What the UI shows as synced / unsynced, read from the same instance."""
    graph = defs.resolve_asset_graph()
    resolver = CachingStaleStatusResolver(instance, graph, LoadingContextForTest(instance))
    return {key.to_user_string(): resolver.get_status(key) for key in WHOLE_GRAPH}


def _change_availability_rules(ui: UI) -> None:
    """The walkthrough's config change, from the command line: availability with another seed (run in the
    team home, as the stack's processes are: the CLI would load the repo's .env over this environment)."""
    config = Path(ui.env["TV5_DATA_DIR"]).parent / "availability-seed.yaml"
    config.write_text("ops:\n  availability:\n    config:\n      seed: 4242\n")
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "tv5_assets.definitions",
         "--select", "availability", "-c", str(config)],
        cwd=ui.home, env=ui.env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def _deliver_a_day(ui: UI) -> str:
    """One generated day continuing the stack's release, renamed into the landing folder (as a delivery lands)."""
    from tv5_assets.ingestion.day_assets import LANDING_DAYS
    from tv5_assets.sample.days import write_days

    record = ui.instance.fetch_materializations(dg.AssetKey("movielens_release"), limit=1).records[0]
    release = Path(str(record.asset_materialization.metadata["directory"].value))
    staging = Path(ui.env["TV5_DATA_DIR"]) / "day-staging"
    [path] = write_days(release, staging, 1, 40, 6, 1, seed=14)
    landing = Path(ui.env["TV5_DATA_DIR"]).joinpath(*LANDING_DAYS)
    landing.mkdir(parents=True, exist_ok=True)
    os.replace(path, landing / path.name)
    return path.stem.split("-", 1)[1]


def _wait_for_day_run(ui: UI, day: str, timeout_s: float = 300) -> list[dg.DagsterRun]:
    """The `daily` run the day sensor launched for `day`, once finished."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = [r for r in ui.instance.get_runs(filters=dg.RunsFilter(job_name="daily", created_after=ui.since))
                if r.tags.get("dagster/partition") == day]
        if runs and all(run.is_finished for run in runs):
            return runs
        time.sleep(3)
    raise AssertionError(f"the day sensor did not run day {day} within {timeout_s} s")


def _wait_for_runs(ui: UI, timeout_s: float = 900) -> list[dg.DagsterRun]:
    """Every run of this test, once all have finished (the UI's run first; the housekeeping schedule's left out)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = workload(ui.instance.get_runs(filters=dg.RunsFilter(created_after=ui.since)))
        if runs and all(run.is_finished for run in runs):
            return list(reversed(runs))
        time.sleep(3)
    raise AssertionError(f"the run launched from the UI did not finish within {timeout_s} s")


def test_materialize_all_from_the_ui_then_read_assets_and_checks(dagster_ui: UI) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, instance = dagster_ui.url, dagster_ui.instance
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    asset_keys = sorted(defs.resolve_asset_graph().materializable_asset_keys)  # the days too: the catalog lists all
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(60_000)
        expect.set_options(timeout=30_000)

        # 1. Materialize all, from the `whole_graph` job's lineage (the global page also holds the daily deliveries,
        # partitioned by arrival day, which the sensor brings in one day at a time)
        page.goto(f"{url}/locations/{LOCATION}/jobs/whole_graph", wait_until="networkidle")
        _dismiss_welcome(page)
        page.get_by_role("button", name="Materialize all").first.click()
        expect(page.get_by_text("Launched run")).to_be_visible(timeout=120_000)
        runs = _wait_for_runs(dagster_ui)
        assert [run.status for run in runs] == [dg.DagsterRunStatus.SUCCESS], runs
        assert set(_stale_statuses(instance).values()) == {StaleStatus.FRESH}

        page.goto(f"{url}/locations/{LOCATION}/asset-groups/movielens", wait_until="networkidle")
        expect(page.get_by_text("5 / 5 Passed").first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "movielens-lineage.png"))
        # the lineage also draws the readers of movies and ratings (the days among them), so read the list view
        page.get_by_role("tab", name="List").click()
        expect(page.get_by_text("ratings", exact=True).first).to_be_visible()

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
        _change_availability_rules(dagster_ui)
        unsynced = {k for k, status in _stale_statuses(instance).items() if status == StaleStatus.STALE}
        assert unsynced == {"milvus/media_vectors", "milvus/hybrid_media_vectors", "graph"}
        page.goto(f"{url}/locations/{LOCATION}/asset-groups/vector_store", wait_until="networkidle")
        expect(page.get_by_text("Unsynced").first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "unsynced.png"))

        # 5. "Materialize unsynced" (the menu beside "Materialize all") rebuilds just those three
        page.goto(f"{url}/locations/{LOCATION}/jobs/whole_graph", wait_until="networkidle")
        page.locator('button:right-of(:text("Materialize all"))').first.click()
        page.get_by_text("Materialize unsynced").first.click()
        dialog = page.get_by_role("dialog").filter(has_text="Materialize unsynced assets")
        for name in ("graph", "milvus / media_vectors", "milvus / hybrid_media_vectors"):
            expect(dialog.get_by_text(name, exact=True).first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "materialize-unsynced-dialog.png"))
        dialog.get_by_role("button", name="Materialize 3 assets").click()
        expect(page.get_by_text("Launched run")).to_be_visible(timeout=120_000)
        runs = _wait_for_runs(dagster_ui)
        assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs), runs
        rebuilt = set().union(*(run.asset_selection or set() for run in runs[2:]))
        assert {key.to_user_string() for key in rebuilt} <= unsynced | {"release"} and unsynced <= {
            key.to_user_string() for key in rebuilt}
        # 6. The stores staged new versions: `release`, which publishes them together, is the one asset left
        # unsynced (unless the automation sensor published them already); publish them
        assert {k for k, s in _stale_statuses(instance).items() if s != StaleStatus.FRESH} <= {"release"}
        launch(url, ["release"], tags={"test": "browser-release"})
        runs = _wait_for_runs(dagster_ui)
        assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs), runs
        assert set(_stale_statuses(instance).values()) == {StaleStatus.FRESH}
        page.goto(f"{url}/locations/{LOCATION}/asset-groups/vector_store", wait_until="networkidle")
        # the group's lineage renders its check badges after the graph's layout: slow on a loaded 2-core host
        expect(page.get_by_text(re.compile(r"^(\d+) / \1 Passed$")).first).to_be_visible(timeout=120_000)
        assert page.get_by_text("Unsynced").count() == 0
        page.screenshot(path=str(ARTIFACTS / "after-materialize-unsynced.png"))

        # 7. A day file lands: the daemon's day sensor adds its partition and runs `daily`; the partitions view
        # shows the day loaded, and its checks tab the day's checks
        day = _deliver_a_day(dagster_ui)
        [run] = _wait_for_day_run(dagster_ui, day)
        assert run.status == dg.DagsterRunStatus.SUCCESS, run
        assert instance.get_materialized_partitions(dg.AssetKey("day_ratings")) == {day}
        page.goto(f"{url}/assets/day_ratings?view=partitions", wait_until="networkidle")
        expect(page.get_by_text(day).first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "day-partitions.png"))
        page.goto(f"{url}/assets/day_ratings?view=checks", wait_until="networkidle")
        expect(page.get_by_text("arrival_is_the_partitions_day", exact=True).first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "day-checks.png"))
        browser.close()
    shots = ("movielens-lineage.png", "asset-catalog.png", "ratings-checks.png", "unsynced.png",
             "materialize-unsynced-dialog.png", "after-materialize-unsynced.png", "day-partitions.png",
             "day-checks.png")
    assert all((ARTIFACTS / name).stat().st_size > 10_000 for name in shots)
