import gc
import threading
from collections.abc import Iterator

import pytest
from PySide6.QtCore import QObject

from terminal.ui.collector import GuiThreadCollector

pytestmark = pytest.mark.qt


class _Cycle:
    """Garbage only the cycle collector frees; records the thread that freed it."""

    def __init__(self, freed_on: list[str]) -> None:
        self.me = self
        self.qt_object = QObject()
        self._freed_on = freed_on

    def __del__(self) -> None:
        self._freed_on.append(threading.current_thread().name)


@pytest.fixture
def automatic_gc() -> Iterator[None]:
    """The automatic collector on, as in an app before its collector starts (the UI fixture
    turned it off for the test)."""
    gc.enable()
    yield
    gc.disable()


def _allocate_on_a_worker() -> None:
    def churn() -> None:
        for _ in range(200):
            junk = [[i] for i in range(1000)]  # far past the collector's thresholds
            del junk

    worker = threading.Thread(target=churn, name="worker")
    worker.start()
    worker.join()


def test_cycles_are_freed_on_the_gui_thread_however_much_workers_allocate(
        qapp, automatic_gc: None) -> None:
    freed_on: list[str] = []
    main = threading.current_thread().name
    with GuiThreadCollector():
        _Cycle(freed_on)
        _allocate_on_a_worker()
        assert freed_on == []
        assert not gc.isenabled()
    assert freed_on == [main]


def test_the_timer_collects_the_generations_that_are_due(qapp, qtbot, automatic_gc: None) -> None:
    freed_on: list[str] = []
    with GuiThreadCollector(interval_ms=10):
        _Cycle(freed_on)
        junk = [[i] for i in range(2 * gc.get_threshold()[0])]
        qtbot.waitUntil(lambda: freed_on != [], timeout=2000)
        del junk
    assert freed_on == [threading.current_thread().name]


def test_stopping_restores_the_automatic_collector_as_it_was(qapp, automatic_gc: None) -> None:
    with GuiThreadCollector():
        assert not gc.isenabled()
        with GuiThreadCollector():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
