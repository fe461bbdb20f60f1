"""What every Pukara screen shares: the client, the clock, and calls in thread workers.

Screens never call the client on the event loop. :meth:`PukaraScreen.call` runs one client
call in a thread worker (``exclusive`` within its group, so a newer keystroke supersedes an
older query) and posts the outcome back as a message: :class:`CallDone` runs the screen's
callback on the event loop, :class:`CallFailed` becomes ``notify(severity="error")`` with
the error's message; no traceback ever reaches the screen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.binding import BindingType
from textual.message import Message
from textual.screen import Screen
from textual.worker import get_current_worker

from pukara.core.errors import PukaraError
from tui.widgets.safe import visible

if TYPE_CHECKING:
    from tui.app import PukaraApp
    from tui.client.base import CaseClient


@dataclass
class CallDone(Message):
    """A client call finished; ``then`` gets its result on the event loop."""

    then: Callable[[Any], None]
    result: Any


@dataclass
class CallFailed(Message):
    """A client call raised; ``text`` is what the analyst is told."""

    text: str


def error_text(exc: BaseException) -> str:
    """What to tell the analyst about an exception (never a traceback)."""
    if isinstance(exc, PukaraError):
        return visible(exc.message, 500)
    return f"internal error: {type(exc).__name__}: {visible(exc, 300)}"


class PukaraScreen(Screen[None]):
    """A screen of the app; subclasses list their keys in BINDINGS (the help screen
    shows them) and a one-line HELP."""

    HELP: ClassVar[str] = ""
    BINDINGS: ClassVar[list[BindingType]] = []

    @property
    def pukara(self) -> PukaraApp:
        """The app (typed)."""
        from tui.app import PukaraApp

        app = self.app
        assert isinstance(app, PukaraApp)
        return app

    @property
    def client(self) -> CaseClient:
        """The data client."""
        return self.pukara.client

    def now(self) -> datetime:
        """The app's clock (frozen in tests)."""
        return self.pukara.clock()

    def call(self, fn: Callable[..., Any], *args: Any, then: Callable[[Any], None],
             group: str = "default") -> None:
        """Run ``fn(*args)`` in a thread worker; ``then(result)`` afterwards."""
        def work() -> None:
            try:
                result = fn(*args)
            except Exception as exc:  # every failure becomes a notification
                if not get_current_worker().is_cancelled:
                    self.post_message(CallFailed(error_text(exc)))
                return
            if not get_current_worker().is_cancelled:
                self.post_message(CallDone(then, result))

        self.run_worker(work, name=group, group=f"{id(self)}:{group}", thread=True,
                        exclusive=True, exit_on_error=False)

    @on(CallDone)
    def _call_done(self, message: CallDone) -> None:
        message.stop()
        try:
            message.then(message.result)
        except Exception as exc:  # a rendering bug is reported, not shown as a traceback
            self.notify(error_text(exc), severity="error", markup=False)

    @on(CallFailed)
    def _call_failed(self, message: CallFailed) -> None:
        message.stop()
        self.notify(message.text, severity="error", markup=False, timeout=8)
