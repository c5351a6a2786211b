"""Named points at which a test stops a purge, to kill it there or to look at it from outside.

Set ``RETENTION_PAUSE_AT=<point>`` (or ``<point>:<n>``: the n-th time this process reaches
it) and ``RETENTION_PAUSE_FILE=<path>``: on reaching the point the process writes the point's
name into that file and waits until the file is removed, then goes on. Unset (production),
reaching a point costs one lookup in the environment. The points of a purge batch, in order:
``claimed`` (its range locked, nothing written), ``archived`` (the archive synced to disk, no
row changed), ``deleted`` (rows changed and the batch's ledger entry written, not committed),
``committed``; and the batch engine's ``job-finished`` (no range pending, before the job's
ranges are removed).
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from pathlib import Path

__all__ = ["pause_point"]

_reached: Counter = Counter()
_lock = threading.Lock()


def pause_point(name: str) -> None:
    """Wait here while the test that asked for this point looks or kills (see above)."""
    wanted = os.environ.get("RETENTION_PAUSE_AT")
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point != name:
        return
    signal = Path(os.environ["RETENTION_PAUSE_FILE"])
    with _lock:  # counted per signal file: each test names its own
        _reached[signal, name] += 1
        count = _reached[signal, name]
    if count != int(nth or 1):
        return
    signal.write_text(name)
    while signal.exists():
        time.sleep(0.02)
