"""Keep the cyclic garbage collector off what start-up built, and out of most requests.

Imports, the app, the container and the SDK leave about 200,000 long-lived objects. Every full
collection walked all of them: under tool-call load, a pause of 30-300 ms every second or so, on
whichever request happened to allocate at that moment. Frozen, they are skipped; objects made
while serving are collected as before. A young generation of 10,000 objects instead of 700 lets a
request's short-lived objects die by reference counting before a collection looks at them, so
far fewer of them are copied into the older generations that every later collection walks again.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000
_before: list[tuple[int, int, int]] = []


def freeze_startup_objects() -> None:
    """Call once the app is ready to serve: what exists now stays out of every later collection."""
    gc.collect()  # garbage from start-up goes now, instead of staying frozen for good
    gc.freeze()
    _before.append(gc.get_threshold())
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def unfreeze() -> None:
    """On shutdown: a process that builds several apps (tests) gets the old ones collected again."""
    gc.unfreeze()
    if _before:
        gc.set_threshold(*_before.pop())
