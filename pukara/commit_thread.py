"""A written batch whose commit runs in a thread while the caller stages the next batch.

On SQLite a commit is mostly waiting for ``fsync`` (with ``synchronous=FULL``), which
releases the GIL: the bulk ingest stages batch k+1 (correlation, marks, folding — pure
Python, no database) while batch k's commit runs here. Nothing is acknowledged before
:meth:`InFlight.wait` says the commit succeeded. The caller keeps the order of undo right:
on a failed commit it first discards what it staged since, then calls :meth:`InFlight.abort`
(whose rollback puts back what batch k changed in memory).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import Connection, RootTransaction


class InFlight:
    """Batch k's transaction, its commit started in a thread of its own."""

    def __init__(self, conn: Connection, transaction: RootTransaction,
                 release: Callable[[], None]) -> None:
        self.conn = conn
        self.transaction = transaction
        self._release = release
        self.error: BaseException | None = None
        #: closed or aborted: the connection is back and the lock released
        self.done = False
        self._thread = threading.Thread(target=self._commit, name="pukara-commit", daemon=True)
        self._thread.start()

    def _commit(self) -> None:
        try:
            self.transaction.commit()
        except BaseException as exc:  # handed to the caller by wait()
            self.error = exc

    def wait(self) -> BaseException | None:
        """Block until the commit ended; its error, or None when it is durable. An interrupt
        while waiting is raised once the commit has ended (it is never abandoned)."""
        interrupted: KeyboardInterrupt | None = None
        while self._thread.is_alive():
            try:
                self._thread.join()
            except KeyboardInterrupt as exc:
                interrupted = exc
        if interrupted is not None:
            raise interrupted
        return self.error

    def close(self) -> None:
        """After a successful commit: give the connection back (once)."""
        if self.done:
            return
        self.done = True
        try:
            self.conn.close()
        finally:
            self._release()

    def abort(self) -> None:
        """After a failed commit: roll back (the transaction's listeners undo its memory)."""
        if self.done:
            return
        try:
            self.transaction.rollback()
        finally:
            self.close()
