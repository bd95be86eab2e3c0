"""What the UI shows when a release is stopped: screenshots of the `release` asset's page, for people to look at.

    python -m tv5_assets_tests.ui_release_story [out dir]    (default artifacts/ui; needs scripts/services' Neo4j)

On a fresh lake and instance of their own: the sample materialized and released, then a new AgentDB stage with a
real defect (a table dropped), its checks failing, and `release` stopped. A `dagster-webserver` on that instance
then shows the `release` asset: the stopped run naming the check and the previous release still served (its last
materialization and manifest). Not a test: a picture of the story, written where it says.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import dagster as dg

from tv5_assets.core.pools import apply_limits
from tv5_assets.core.releases import Registry
from tv5_assets.local_services.processes import free_port
from tv5_assets_tests.harness import SMALL_SAMPLE, materialize, release_config
from tv5_assets_tests.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

REPO = Path(__file__).resolve().parents[1]


def stop_a_release(lake: Path, instance: dg.DagsterInstance) -> tuple[str, str]:
    """(the release still served, the stopped run's id)."""
    assert materialize("*", lake, release_config(**SMALL_SAMPLE), instance=instance).success
    shorter = {"ops": {"agentdb": {"config": {"recent_steps_per_user": 3}}}}
    staged = materialize(dg.AssetSelection.assets("agentdb").without_checks(), lake, shorter, instance=instance)
    name = staged.get_asset_materialization_events()[0].materialization.metadata["staged_version"].value
    with sqlite3.connect(lake / "agentdb.versions" / name) as db:
        db.execute("DROP TABLE learning_experiences")
    materialize(dg.AssetSelection.checks_for_assets("agentdb"), lake, instance=instance, raise_on_error=False)
    stopped = materialize("release", lake, instance=instance, raise_on_error=False)
    assert not stopped.success
    return Registry.in_lake(lake).served_id() or "", stopped.run_id


def screenshots(url: str, out: Path, stopped_run: str) -> list[Path]:
    from playwright.sync_api import sync_playwright

    shots = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1600, "height": 1100})
        page.set_default_timeout(60_000)
        for name, path in (("release-asset", "/assets/release"), ("release-events", "/assets/release?view=events"),
                           ("release-stopped-run", f"/runs/{stopped_run}?logs=type%3ASTEP_FAILURE")):
            page.goto(url + path, wait_until="networkidle")
            try:
                page.get_by_role("button", name="Skip").click(timeout=5_000)
            except Exception:  # noqa: BLE001 - no welcome dialog this time
                pass
            time.sleep(2)
            shots.append(out / f"{name}.png")
            page.screenshot(path=str(shots[-1]), full_page=True)
        browser.close()
    return shots


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tv5-ui-story-") as tmp:
        lake, home = Path(tmp, "lake"), Path(tmp, "home")
        lake.mkdir()
        home.mkdir()
        with dg.DagsterInstance.local_temp(str(home)) as instance:
            apply_limits(instance)
            served, stopped_run = stop_a_release(lake, instance)
        port = free_port()
        env = {**os.environ, "DAGSTER_HOME": str(home), "TV5_DATA_DIR": str(lake)}
        web = subprocess.Popen([sys.executable, "-m", "dagster_webserver", "-m", "tv5_assets.definitions", "-h",
                                "127.0.0.1", "-p", str(port)], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 180
            while True:
                try:
                    urllib.request.urlopen(url + "/server_info", timeout=2)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(1)
            for shot in screenshots(url, out, stopped_run):
                print(shot)
            print(f"served release: {served}")
        finally:
            web.terminate()
            web.wait(30)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ARTIFACTS.parent / "ui")
