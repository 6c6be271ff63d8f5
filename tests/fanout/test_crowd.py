"""Many streams over shared pages while records arrive: the event loop keeps turning.

Two or more streams reading one page while records are appended once live-locked the service
(a finished page load still listed as loading was handed back without yielding, and the
stream spun on it). The scenario runs in a child process (``tests/fanout/crowd.py``) whose
watchdog thread ends it with status 3 and every stack when the loop stops turning; a hang
fails here at the deadline instead of hanging the suite.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_crowd_of_streams_over_shared_pages_keeps_the_event_loop_turning() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.fanout.crowd", "--streams", "100", "--runs", "3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    runs = [line for line in done.stdout.splitlines() if line.startswith("run ")]
    assert len(runs) == 3
    assert all(line.endswith("records delivered") and " 0 records" not in line for line in runs)
