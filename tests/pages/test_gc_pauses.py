"""ui/gc_pauses: after a page's imports the app collects once and freezes what is left, so later
full garbage collections skip it; garbage of that moment is collected, not frozen."""

from __future__ import annotations

import gc
import sys
import types
import weakref

import pytest

from ui import gc_pauses


class Node:
    """A container object that can sit in a reference cycle."""

    def __init__(self):
        self.other = None


@pytest.fixture
def unfrozen():
    yield
    gc.unfreeze()   # back to normal for the rest of the suite


def import_new_module(monkeypatch, name: str) -> None:
    monkeypatch.setitem(sys.modules, name, types.ModuleType(name))


def test_freezes_live_objects_once_per_import_and_collects_garbage_first(monkeypatch, unfrozen):
    import_new_module(monkeypatch, "scorelab_test_first_import")
    kept = Node()
    cycle = Node()
    cycle.other = Node()
    cycle.other.other = cycle           # unreachable once dropped: only the collector frees it
    dead = weakref.ref(cycle)
    del cycle

    assert gc_pauses.freeze_after_imports()
    assert dead() is None               # collected before the freeze, not frozen
    assert gc.get_freeze_count() > 0
    assert not any(obj is kept for obj in gc.get_objects())   # out of the collector's view

    assert not gc_pauses.freeze_after_imports()   # nothing imported since: nothing to do
    later = Node()
    assert any(obj is later for obj in gc.get_objects())      # new objects are collected as usual

    import_new_module(monkeypatch, "scorelab_test_second_import")
    assert gc_pauses.freeze_after_imports()       # a page that imports more freezes again
    assert not any(obj is later for obj in gc.get_objects())


def test_the_app_freezes_after_a_page_run(open_page, monkeypatch, unfrozen):
    gc.unfreeze()
    monkeypatch.setattr(gc_pauses, "_frozen_with_modules", 0)   # as in a fresh server process
    at, _ = open_page("app_pages/langevin.py")
    assert not at.exception
    assert gc.get_freeze_count() > 0
    assert not gc_pauses.freeze_after_imports()   # the page's run already froze its imports
