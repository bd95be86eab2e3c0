"""The Milvus 2.3.5 standalone server through services/milvus/launcher.py (loopback only: see there)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tv5_assets.local_services.processes import spawn
from tv5_assets.local_services.settings import ROOT, ServiceSettings

LAUNCHER = ROOT / "services" / "milvus" / "launcher.py"


def launch(settings: ServiceSettings, log: Path) -> int:
    """Start the launcher in the background with this interpreter (the one that has the `milvus` wheel)."""
    data = settings.milvus_data
    data.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(LAUNCHER), "--data-dir", str(data), "--port", str(settings.milvus_port),
               "--start-timeout", f"{settings.milvus_start_timeout:g}",
               "--stop-timeout", f"{settings.services_stop_timeout:g}"]
    return spawn(command, ROOT, dict(os.environ), log)
