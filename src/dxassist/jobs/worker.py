"""The in-process worker: a thread that claims received studies and analyses them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from dxassist.config import Settings
from dxassist.cxr.runtime import CxrModel
from dxassist.jobs.tasks import analyse_study
from dxassist.store import repository
from dxassist.store.db import session_factory_for

log = logging.getLogger(__name__)

#: Seconds the worker sleeps when there is nothing to do (unless woken by :meth:`wake`).
POLL_INTERVAL_S = 1.0


class Worker:
    """Loops ``claim_next`` → ``analyse_study`` in a background thread until stopped.

    >>> worker = Worker(settings, CxrModel.load())   # doctest: +SKIP
    >>> worker.start()                               # doctest: +SKIP
    >>> worker.wake()        # after receiving a study, to skip the poll wait
    >>> worker.stop()
    """

    def __init__(
        self,
        settings: Settings,
        model: CxrModel,
        sessions: sessionmaker[Session] | None = None,
        poll_interval: float = POLL_INTERVAL_S,
        on_analysed: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.on_analysed = on_analysed  # e.g. wake the result sender
        self.model = model
        self.sessions = sessions or session_factory_for(settings.database_url)
        self.poll_interval = poll_interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def requeue_stale(self) -> int:
        """Put studies a crashed run left in ``analysing`` back in the queue."""
        with self.sessions() as session:
            n = repository.requeue_stale_analysing(session)
        if n:
            log.warning("requeued %d study(ies) left in 'analysing' by an earlier run", n)
        return n

    def run_once(self) -> bool:
        """Claim and analyse one study; False when there was none to claim."""
        with self.sessions() as session:
            study = repository.claim_next(session)
        if study is None:
            return False
        analyse_study(study.id, self.settings, self.model, self.sessions)
        if self.on_analysed is not None:
            self.on_analysed()
        return True

    def drain(self) -> int:
        """Process studies in the calling thread until none is left; returns how many."""
        n = 0
        while self.run_once():
            n += 1
        return n

    def start(self) -> None:
        """Requeue stale studies, then start the background thread."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("the worker is already running")
        self.requeue_stale()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="dxassist-worker", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look for work now rather than after the poll interval."""
        self._wake.set()

    def stop(self, timeout: float | None = 30.0) -> None:
        """Ask the thread to stop after the current study and wait for it."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.run_once()
            except Exception:
                log.exception("worker: error while processing a study; continuing")
                worked = False
            if not worked:
                self._wake.wait(self.poll_interval)
                self._wake.clear()
