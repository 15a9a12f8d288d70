"""The serving process keeps start-up objects out of garbage collection, and gives that back on shutdown."""

from __future__ import annotations

import gc

from hermes.entrypoints.heap import YOUNG_THRESHOLD, freeze_startup_objects, unfreeze


def test_startup_objects_are_frozen_while_serving_and_released_on_shutdown() -> None:
    before = gc.get_threshold()
    built_at_startup = [[] for _ in range(10)]
    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() >= len(built_at_startup)
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *before[1:])
    finally:
        unfreeze()
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before
