"""Python's cycle collector, run on the GUI thread only, between events.

Closed windows, pyqtgraph items and the qasync loop's timers and threads end up in reference
cycles, so CPython frees them only when its cycle collector runs. Left automatic, that happens
on whichever thread allocates at the wrong moment: a worker generating candles or writing the
store, or the GUI thread in the middle of a paint. Either destroys Qt objects that live on the
GUI thread while Qt is using them, and the process dies with a segmentation fault. While a
:class:`GuiThreadCollector` runs, the automatic collector is off and a timer on the GUI thread
collects instead, at the same generational thresholds.
"""

from __future__ import annotations

import gc
from types import TracebackType

from PySide6.QtCore import QTimer

#: How often the GUI thread checks whether a collection is due.
COLLECT_INTERVAL_MS = 1000


class GuiThreadCollector:
    """Runs Python's cycle collector on a GUI-thread timer instead of automatically.

    Create and use it on the GUI thread with a QApplication; as a context manager it starts
    on entry and on exit stops, collects everything left (say, a window deleted just before)
    and puts the automatic collector back as it was.
    """

    def __init__(self, interval_ms: int = COLLECT_INTERVAL_MS) -> None:
        self._timer = QTimer()
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.collect_due)
        self._was_enabled = gc.isenabled()

    def start(self) -> None:
        """Turn the automatic collector off and start collecting on the timer."""
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._timer.start()

    def stop(self) -> None:
        """Stop the timer, collect every generation now, and restore the automatic collector."""
        self._timer.stop()
        gc.collect()
        if self._was_enabled:
            gc.enable()

    def collect_due(self) -> None:
        """Collect the generations whose allocation counts passed their thresholds."""
        counts, thresholds = gc.get_count(), gc.get_threshold()
        generation = -1
        while generation < 2 and counts[generation + 1] > thresholds[generation + 1]:
            generation += 1
        if generation >= 0:
            gc.collect(generation)

    def __enter__(self) -> GuiThreadCollector:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()
