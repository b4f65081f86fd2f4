"""Wall-clock and CPU seconds of a piece of work, counted side by side.

Wall-clock time (``time.perf_counter``) counts every second that passes, including those in which the
process did not run: waiting for a core that another process holds, or stopped (``SIGSTOP``) while the
machine did something else. On the shared 2-core machines the book's runs train on, that happens all the
time: two runs share the two cores with whatever else the machine is doing, and a run paused for the
18 minutes of a CI run counts those minutes as training or evaluation. CPU time (``time.process_time``) counts
only the seconds the process's threads ran on a core. The runs use one thread each, so it is the compute
the run cost, and it is what the book means by *CPU seconds*: the pace of a long run, the hours it still
needs, and the time axis on which estimators are compared (chapter 10). Both are recorded; the wall time
says how long one waited for a result, the CPU time what it cost.
"""

from __future__ import annotations

import time

__all__ = ["Stopwatch"]


class Stopwatch:
    """Wall and CPU seconds since the start or the last :meth:`lap`."""

    def __init__(self):
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def peek(self) -> tuple[float, float]:
        """``(wall, cpu)`` seconds since the start or the last lap, without starting a new lap."""
        return time.perf_counter() - self._wall, time.process_time() - self._cpu

    def lap(self) -> tuple[float, float]:
        """``(wall, cpu)`` seconds since the start or the last lap; a new lap starts now."""
        wall, cpu = time.perf_counter(), time.process_time()
        out = (wall - self._wall, cpu - self._cpu)
        self._wall, self._cpu = wall, cpu
        return out
