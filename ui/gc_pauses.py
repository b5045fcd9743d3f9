"""Keep Python's cyclic garbage collector from pausing slider moves.

A full (generation 2) collection walks every container object the process tracks. With torch,
plotly, numba and Streamlit imported that is about 320,000 objects after the Langevin page's first
run, and a full collection takes 130–240 ms on a 2-core machine. The Langevin page allocates
enough per slider move (figure dicts, protobuf deltas, NumPy results) that one ran on almost every
move, in the middle of the rerun:
measured with a gc callback in the server during `python -m engine bench browser`, six moves of
six had one, 176–236 ms each, more than the whole rest of the rerun.

`gc.freeze()` moves every object tracked at that moment into a permanent generation that
collections skip; objects created later are collected as usual, and frozen ones are still freed by
reference counting (only cycles among them would be kept). So after the imports of a page — the
bulk of those objects — we collect once and freeze, and later full collections walk only what the
app made since: a few milliseconds.
"""

from __future__ import annotations

import gc
import sys

_frozen_with_modules = 0   # len(sys.modules) at the last freeze


def freeze_after_imports() -> bool:
    """Collect and freeze once whenever modules were imported since the last freeze (a page's
    first run); otherwise do nothing (a cheap check). True when it froze."""
    global _frozen_with_modules
    modules = len(sys.modules)
    if modules == _frozen_with_modules:
        return False
    gc.collect()   # what is garbage now is not frozen with the rest
    gc.freeze()
    _frozen_with_modules = modules
    return True
