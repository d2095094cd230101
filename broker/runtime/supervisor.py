"""Child processes kept alive by their parent (ingest consumers, extra API server processes)."""

from __future__ import annotations

import logging
import multiprocessing as mp
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class _Slot:
    index: int
    process: object = None
    started_at: float = 0.0
    quick_deaths: int = 0  # deaths in a row, each within RESTART_RESET_S of starting
    restart_at: float | None = None


class ProcessSupervisor:
    """``n`` processes running ``target(*args)``, kept alive: one that dies is restarted after a backoff
    (1 s doubling to 60 s; a process that lived ``RESTART_RESET_S`` starts the count again), counted and
    logged. After ``max_quick_deaths`` deaths in a row without ever running long, it gives up:
    :meth:`check` returns False. :meth:`stop` always completes: SIGTERM, then SIGKILL after ``timeout``.
    Children are spawned (never forked: no inherited sockets, locks or database connections)."""

    RESTART_RESET_S = 60.0
    label = "child"

    def __init__(self, target, args: tuple, n: int, *, max_quick_deaths: int = 6, label: str | None = None):
        self.label = label or self.label
        self.target = target
        self.args = args
        self.max_quick_deaths = max_quick_deaths
        self.ctx = mp.get_context("spawn")
        self.slots = [_Slot(i) for i in range(n)]
        self.restarts = 0

    @property
    def processes(self) -> list:
        return [s.process for s in self.slots if s.process is not None]

    def start(self):
        for slot in self.slots:
            self._spawn(slot)
        return self

    def _spawn(self, slot: _Slot) -> None:
        slot.process = self.ctx.Process(target=self.target, args=self.args,
                                        name=f"skybroker-{self.label}-{slot.index}", daemon=False)
        slot.process.start()
        slot.started_at, slot.restart_at = time.monotonic(), None

    def on_death(self, pid: int) -> None:
        """Clean up after a child that died or was killed (subclasses)."""

    def check(self) -> bool:
        """Restart what died (when its backoff is over); False once a process keeps dying."""
        now = time.monotonic()
        for slot in self.slots:
            p = slot.process
            if slot.restart_at is not None:
                if now >= slot.restart_at:
                    self.restarts += 1
                    log.warning("restarting %s process %d (restart %d)", self.label, slot.index, self.restarts)
                    self._spawn(slot)
                continue
            if p is None or p.is_alive():
                continue
            lived = now - slot.started_at
            slot.quick_deaths = slot.quick_deaths + 1 if lived < self.RESTART_RESET_S else 1
            delay = min(60.0, 2.0 ** (slot.quick_deaths - 1))
            log.error("%s process %d (pid %s) died with exit code %s after %.0f s; restarting in %.0f s",
                      self.label, slot.index, p.pid, p.exitcode, lived, delay)
            self.on_death(p.pid)
            if slot.quick_deaths >= self.max_quick_deaths:
                log.error("%s process %d died %d times in a row; giving up", self.label, slot.index,
                          slot.quick_deaths)
                return False
            slot.restart_at = now + delay
        return True

    def stop(self, timeout: float = 30.0) -> None:
        for p in self.processes:
            if p.is_alive():
                p.terminate()  # SIGTERM: the child finishes what it is doing and leaves
        deadline = time.monotonic() + timeout
        for p in self.processes:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                log.warning("%s process pid %s did not stop in %.0f s; killing it", self.label, p.pid, timeout)
                p.kill()
                p.join(5)
                self.on_death(p.pid)
