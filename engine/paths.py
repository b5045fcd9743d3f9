"""Where the project's files are: one definition, used by every module that reads or writes them."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CHECKPOINTS = PROJECT_ROOT / "checkpoints"
MANIFEST = CHECKPOINTS / "manifest.json"


def default_runs_root() -> Path:
    """Where training runs are written: $SCORELAB_RUNS, else runs/ in the project."""
    return Path(os.environ.get("SCORELAB_RUNS", PROJECT_ROOT / "runs"))
