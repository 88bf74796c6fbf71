"""Where an in-process connector's event loop runs, and how one call on it is bounded.

Two runners share one interface, ``run(coroutine, timeout, label)``, which returns the
coroutine's result or raises ``CallFailedError`` (a timeout or a crash), never hangs:

* ``SameThreadLoop`` (mode ``"same-thread"``): a persistent event loop driven in the
  calling thread for the length of each call, so a call costs no thread hand-off (about
  a tenth of the thread mode's overhead). A coroutine that hangs is bounded by a loop
  timer, then cancelled. A connector that blocks the loop synchronously (``time.sleep``
  in a handler) is interrupted by a ``SIGALRM`` backstop armed for the call (so it needs
  the main thread); the previous handler and interval timer are restored after every
  call, and an earlier alarm of someone else's is left to fire on its own. The interrupt
  is an exception raised where the loop is stuck: in a task or a callback the loop stays
  usable (the call is reported, the connector keeps its loop); if it escaped the loop's
  own machinery the loop is replaced (``renew``) and whatever was bound to it must start
  again. Calls from another thread or from inside a running event loop are driven by a
  helper thread instead, bounded the same way without the backstop.
* ``ThreadLoop`` (mode ``"thread"``): the loop runs forever on a background thread and
  each call is handed over; a blocked loop is detected by a probe and reported until it
  answers again. For drivers started off the main thread (no signals there).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import math
import signal
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from types import FrameType
from typing import Any, Literal, Protocol, TypeVar, cast

__all__ = [
    "CallFailedError",
    "Mode",
    "Runner",
    "SameThreadLoop",
    "ThreadLoop",
    "same_thread_available",
]

T = TypeVar("T")
Mode = Literal["same-thread", "thread"]
Shutdown = Callable[[], Coroutine[Any, Any, None]]

_CANCEL_GRACE = 0.1
"""Real seconds a timed-out call is given to unwind its cancellation (same-thread)."""
_BACKSTOP_GRACE = 0.25
"""Real seconds past a call's timeout (and cancel grace) before ``SIGALRM`` interrupts a
blocked loop; the alarm repeats at this interval until the loop is out of the call."""
_DEAD_PROBE_SECONDS = 0.5
_DISPOSE_SECONDS = 0.5
"""Real seconds a closing (or replaced) loop's tasks are given to unwind their cancellation."""
_MIN_ALARM = 1e-6
_HAS_ITIMER = hasattr(signal, "setitimer") and hasattr(signal, "SIGALRM")
try:  # the C functions: ``signal.signal`` converts handlers to enums (some 10 µs a call)
    _c_signal = importlib.import_module("_signal")
except ImportError:  # pragma: no cover
    _c_signal = signal
_get_handler: Callable[[int], Any] = _c_signal.getsignal
_set_handler: Callable[[int, Any], Any] = _c_signal.signal


class CallFailedError(Exception):
    """A call that did not give its result: ``kind`` is ``"timeout"`` or ``"crash"``.

    ``blocked``: the connector blocked its event loop; ``renew``: the loop is unusable and
    was replaced (same-thread mode), so whatever was bound to it (lifespan) must restart.
    """

    def __init__(
        self,
        kind: Literal["timeout", "crash"],
        detail: str,
        *,
        blocked: bool = False,
        renew: bool = False,
        error: BaseException | None = None,
    ) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.blocked = blocked
        self.renew = renew
        self.error = error


class Runner(Protocol):
    """A connector's event loop and how calls reach it."""

    @property
    def mode(self) -> Mode:
        """``"same-thread"`` or ``"thread"``."""
        ...

    @property
    def blocked_since(self) -> str | None:
        """The call during which the loop got stuck, while it still is (calls fail fast)."""
        ...

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The connector's event loop (same-thread mode replaces it if it breaks)."""
        ...

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float, label: str) -> T:
        """The coroutine's result within about ``timeout``, or ``CallFailedError``."""
        ...

    def close(self, shutdown: Shutdown | None, timeout: float) -> None:
        """Run ``shutdown()`` (bounded), then release the loop (idempotent)."""
        ...


def same_thread_available() -> bool:
    """Whether a same-thread loop can run here: the main thread, signals with interval
    timers, and no event loop already running in this thread."""
    return (
        _HAS_ITIMER
        and threading.current_thread() is threading.main_thread()
        and asyncio._get_running_loop() is None
    )


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _consume(task: asyncio.Future[Any]) -> None:
    """Mark a left-behind task's outcome as seen (no "exception never retrieved" noise)."""
    if not task.cancelled():
        task.exception()


def _consume_later(task: asyncio.Future[Any]) -> None:
    """``_consume`` now if the task is done, else when it is."""
    if task.done():
        _consume(task)
    else:
        task.add_done_callback(_consume)


# --------------------------------------------------------------------------- same thread


async def _stopping(coroutine: Coroutine[Any, Any, T]) -> T:
    """The coroutine, stopping the loop as it ends: the drive ends in the same iteration
    (a done callback would take one more)."""
    try:
        return await coroutine
    finally:
        loop = asyncio._get_running_loop()
        if loop is not None:
            loop.stop()


class _Interrupt(BaseException):
    """Raised by the ``SIGALRM`` backstop inside whatever blocks the loop (a
    ``BaseException``, so a connector's ``except Exception`` does not swallow it)."""


_Alarm = tuple[Any, float, float, float]
"""(previous handler, previous delay, previous interval, monotonic time armed)."""


class SameThreadLoop:
    """A persistent event loop, driven in the calling thread for the length of each call.

    Made on the main thread (its ``SIGALRM`` backstop needs it). A call from anywhere else
    (another thread, or inside a running event loop) still works: the loop is driven by a
    helper thread while the caller waits, bounded the same way but without the backstop,
    so a connector that blocks the loop there is reported dead until it lets go.
    """

    mode: Mode = "same-thread"

    def __init__(self) -> None:
        if not same_thread_available():
            raise RuntimeError(
                "a same-thread connector loop needs the main thread (for its SIGALRM "
                "backstop) and no event loop running in it; use mode='thread'"
            )
        self.loop = asyncio.new_event_loop()
        self.closed = False
        self._owner = threading.get_ident()
        self._lock = threading.Lock()  # one drive at a time, whoever calls
        self._inside = False
        self._interrupts = 0
        self._deadline = 0.0
        self._timers: dict[asyncio.AbstractEventLoop, asyncio.TimerHandle] = {}
        self._helper: threading.Thread | None = None
        self._helper_label = ""
        self._series_depth = 0
        self._series_alarm: _Alarm | None = None
        self._backstop_at = math.inf  # monotonic: when the current call's backstop is due
        self._alarm_due: float | None = None  # monotonic: when our itimer fires (series)

    @property
    def blocked_since(self) -> str | None:
        """The call whose helper thread is still stuck in the loop, if any."""
        helper = self._helper
        if helper is not None and not helper.is_alive():
            self._helper = None
        return self._helper_label if self._helper is not None else None

    # -------------------------------------------------------------- calls

    def run(
        self,
        coroutine: Coroutine[Any, Any, T],
        timeout: float,
        label: str,
        *,
        closing: bool = False,
    ) -> T:
        """Drive the loop until the coroutine ends, ``timeout`` passes or the backstop fires."""
        if self.closed and not closing:
            coroutine.close()
            raise RuntimeError("the connector's event loop is closed")
        if not self._lock.acquire(timeout=max(timeout, 0.0) if math.isfinite(timeout) else -1):
            coroutine.close()
            raise CallFailedError(
                "timeout", f"no answer to {label} within {timeout} s: another call holds the loop"
            )
        try:
            if self.blocked_since is not None:
                coroutine.close()
                since = self._helper_label
                detail = f"connector is dead: its event loop has been blocked since {since}"
                raise CallFailedError("timeout", detail, blocked=True)
            self._interrupts = 0
            task = self.loop.create_task(_stopping(coroutine))
            try:
                escaped, late = self._bounded(self.loop, task, timeout, label)
            except CallFailedError:
                raise
            except BaseException:  # e.g. a previous SIGALRM handler raised as we armed ours
                if self._here():  # (a helper thread may still be driving it: not ours to touch)
                    task.cancel()
                    _consume_later(task)
                raise
            return self._outcome(task, escaped, late, timeout, label)
        finally:
            self._lock.release()

    def _outcome(
        self,
        task: asyncio.Task[T],
        escaped: BaseException | None,
        late: bool,
        timeout: float,
        label: str,
    ) -> T:
        if self._interrupts:
            poisoned = self._poisoned(task, escaped)
            _consume_later(task)
            if poisoned:
                self.renew()
            detail = (
                f"no answer to {label} within {timeout} s; the connector blocked its event "
                "loop (a synchronous wait in a coroutine) and was interrupted"
            )
            raise CallFailedError("timeout", detail, blocked=True, renew=poisoned)
        if isinstance(escaped, KeyboardInterrupt):  # Ctrl-C stops the harness, not the call
            _consume_later(task)
            raise escaped
        if escaped is not None and self._poisoned(task, escaped):
            _consume_later(task)
            self.renew()
            raise CallFailedError(
                "crash", f"{_describe(escaped)} escaped the event loop", renew=True, error=escaped
            )
        if late or not task.done():
            _consume_later(task)
            raise CallFailedError("timeout", f"no answer to {label} within {timeout} s")
        try:
            return task.result()
        except BaseException as exc:  # raised by the coroutine (CancelledError, SystemExit)
            raise CallFailedError("crash", _describe(exc), error=exc) from exc

    @staticmethod
    def _poisoned(task: asyncio.Future[Any], escaped: BaseException | None) -> bool:
        """Something escaped the loop itself (not raised by a task): its state is suspect."""
        if escaped is None:
            return False
        return not (task.done() and not task.cancelled() and task.exception() is escaped)

    def _bounded(
        self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any], seconds: float, label: str
    ) -> tuple[BaseException | None, bool]:
        """Drive ``task`` for ``seconds`` (then cancel it, briefly): here under the backstop,
        or from a helper thread. What escaped the loop, and whether the task was late."""
        if self._here():
            if self._series_alarm is not None:  # armed once for the series: move the due time
                self._due(seconds + _CANCEL_GRACE + _BACKSTOP_GRACE)
                try:
                    return self._drive_and_cancel(loop, task, seconds)
                finally:
                    self._backstop_at = math.inf
            alarm = self._arm(seconds + _CANCEL_GRACE + _BACKSTOP_GRACE)
            try:
                return self._drive_and_cancel(loop, task, seconds)
            finally:
                self._disarm(alarm)
        result: list[tuple[BaseException | None, bool]] = []

        def drive_elsewhere() -> None:
            result.append(self._drive_and_cancel(loop, task, seconds))
            _consume_later(task)  # here: the caller may have given up on it

        helper = threading.Thread(target=drive_elsewhere, name="connector-loop-call", daemon=True)
        self._helper, self._helper_label = helper, label
        helper.start()
        helper.join(seconds + _CANCEL_GRACE + _BACKSTOP_GRACE)
        if helper.is_alive():  # stays in _helper: calls fail fast until it lets go
            raise CallFailedError(
                "timeout",
                f"no answer to {label} within {seconds} s; the connector blocked its event "
                "loop and is marked dead",
                blocked=True,
            )
        self._helper = None
        return result[0]

    def _drive_and_cancel(
        self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any], seconds: float
    ) -> tuple[BaseException | None, bool]:
        escaped = self._drive(loop, task, seconds)
        late = escaped is None and not task.done()
        if late:
            task.cancel()  # it hangs: let it unwind, briefly (the backstop still holds)
            escaped = self._drive(loop, task, _CANCEL_GRACE)
        return escaped, late

    def _drive(
        self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], seconds: float
    ) -> BaseException | None:
        """Run the loop until ``future`` (a ``_stopping`` task) is done or ``seconds`` pass;
        what escaped the loop, if anything."""
        deadline = loop.time() + seconds
        self._deadline = deadline
        timer = self._timers.get(loop)
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            self._timers[loop] = loop.call_at(deadline, self._on_deadline, loop)
        self._inside = True
        try:
            while True:  # the task stops the loop as it ends; a stray stop() just goes on
                loop.run_forever()
                if future.done() or loop.time() >= deadline:
                    return None
        except BaseException as exc:
            return exc
        finally:
            self._inside = False

    def _on_deadline(self, loop: asyncio.AbstractEventLoop) -> None:
        """One lazy timer per loop: stops the loop at the drive's deadline, or moves on to
        it (a timer per call would cost a heap push and a cancel each time)."""
        self._timers.pop(loop, None)
        if loop.time() >= self._deadline:
            loop.stop()
        else:
            self._timers[loop] = loop.call_at(self._deadline, self._on_deadline, loop)

    def _here(self) -> bool:
        """On the owner (main) thread, outside any running loop: drive it here."""
        return threading.get_ident() == self._owner and asyncio._get_running_loop() is None

    # -------------------------------------------------------------- SIGALRM backstop

    def _arm(self, seconds: float) -> _Alarm | None:
        """Install the backstop for ``seconds`` unless an earlier alarm is already due (that
        one's owner handles it) or the current handler cannot be restored."""
        if not math.isfinite(seconds):
            return None
        previous = _get_handler(signal.SIGALRM)
        if previous is None:  # installed outside Python: leave it alone
            return None
        delay, interval = signal.getitimer(signal.ITIMER_REAL)
        if delay and delay <= seconds:
            return None
        _set_handler(signal.SIGALRM, self._on_alarm)
        signal.setitimer(signal.ITIMER_REAL, max(seconds, _MIN_ALARM), _BACKSTOP_GRACE)
        return previous, delay, interval, time.monotonic()

    def _disarm(self, alarm: _Alarm | None) -> None:
        """Stop the backstop, restore the previous handler and what is left of its timer."""
        if alarm is None:
            return
        previous, delay, interval, armed_at = alarm
        signal.setitimer(signal.ITIMER_REAL, 0)
        _set_handler(signal.SIGALRM, previous)  # runs a pending alarm with ours first
        if delay:
            left = delay - (time.monotonic() - armed_at)
            signal.setitimer(signal.ITIMER_REAL, max(left, _MIN_ALARM), interval)

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        if self._series_alarm is not None:
            self._on_series_alarm()
            return
        if self._inside:  # outside the loop the call is ending already: nothing to break
            self._interrupts += 1
            raise _Interrupt("the connector blocked its event loop")

    # -------------------------------------------------------------- a series of calls

    @contextlib.contextmanager
    def series(self) -> Iterator[None]:
        """Calls made inside share one backstop: the ``SIGALRM`` handler is installed once
        and the interval timer set only when a call's backstop falls due before the timer
        does (calls of one timeout: once, then again only when it fires), instead of four
        signal calls per call. Outside the main thread, when an alarm of someone else's is
        pending, or nested in another series, calls are bounded as they are alone."""
        if self._series_depth:
            self._series_depth += 1
            try:
                yield
            finally:
                self._series_depth -= 1
            return
        if not self._here() or not self._series_start():
            yield
            return
        self._series_depth = 1
        try:
            yield
        finally:
            self._series_depth = 0
            alarm, self._series_alarm = self._series_alarm, None
            self._alarm_due, self._backstop_at = None, math.inf
            self._disarm(alarm)

    def _series_start(self) -> bool:
        """Install the series' handler (no timer yet), unless it cannot be restored after."""
        if not _HAS_ITIMER:
            return False
        previous = _get_handler(signal.SIGALRM)
        if previous is None:
            return False
        delay, interval = signal.getitimer(signal.ITIMER_REAL)
        if delay:  # someone else's alarm is pending: calls arm their own, as alone
            return False
        self._series_alarm = (previous, delay, interval, time.monotonic())
        _set_handler(signal.SIGALRM, self._on_alarm)
        return True

    def _due(self, seconds: float) -> None:
        """This call's backstop is due in ``seconds``: set the timer only if it would fire
        later than that (or is not set)."""
        if not math.isfinite(seconds):
            return
        now = time.monotonic()
        self._backstop_at = now + seconds
        if self._alarm_due is None or self._alarm_due > self._backstop_at:
            self._set_alarm(now, max(seconds, _MIN_ALARM))

    def _set_alarm(self, now: float, seconds: float) -> None:
        self._alarm_due = now + seconds
        signal.setitimer(signal.ITIMER_REAL, seconds)

    def _on_series_alarm(self) -> None:
        """The series' timer fired: interrupt a call past its backstop (and fire again in
        ``_BACKSTOP_GRACE`` while it stays stuck), or set the timer for the call under way;
        between calls nothing is due and the next call sets it."""
        now = time.monotonic()
        self._alarm_due = None
        if not math.isfinite(self._backstop_at):
            return
        if now < self._backstop_at:
            self._set_alarm(now, max(self._backstop_at - now, _MIN_ALARM))
            return
        if self._inside:
            self._set_alarm(now, _BACKSTOP_GRACE)
            self._interrupts += 1
            raise _Interrupt("the connector blocked its event loop")

    # -------------------------------------------------------------- life

    def renew(self) -> None:
        """Replace an unusable loop by a fresh one; the old one's tasks get a brief chance to
        unwind (under the backstop) before it is closed."""
        old, self.loop = self.loop, asyncio.new_event_loop()
        self._dispose(old)

    def close(self, shutdown: Shutdown | None, timeout: float) -> None:
        """Run ``shutdown()`` (bounded), cancel what is left (briefly), close the loop."""
        if self.closed:
            return
        self.closed = True
        if shutdown is not None:
            with contextlib.suppress(CallFailedError):
                self.run(shutdown(), timeout, "the lifespan shutdown", closing=True)
        with self._lock:
            self._dispose(self.loop)

    def _dispose(self, loop: asyncio.AbstractEventLoop) -> None:
        """Cancel the loop's tasks, let them unwind for at most ``_DISPOSE_SECONDS`` (a block
        is interrupted), close it."""
        escaped: BaseException | None = None
        if self.blocked_since is None and not loop.is_closed():
            task = loop.create_task(_stopping(self._cancel_all()))
            with contextlib.suppress(CallFailedError):
                escaped, _ = self._bounded(loop, task, _DISPOSE_SECONDS, "closing the loop")
            _consume_later(task)
        self._timers.pop(loop, None)
        with contextlib.suppress(Exception):  # still running in a stuck helper: left as is
            loop.close()
        if isinstance(escaped, KeyboardInterrupt):
            raise escaped

    @staticmethod
    async def _cancel_all() -> None:
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.get_running_loop().shutdown_asyncgens()


# --------------------------------------------------------------------------- thread


class _Pending:
    """One call handed to the loop thread (lighter than ``run_coroutine_threadsafe``:
    a task and a ``threading.Event``, no chained futures)."""

    __slots__ = ("abandoned", "coroutine", "done", "loop", "task")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, Any]
    ) -> None:
        self.loop = loop
        self.coroutine = coroutine
        self.done = threading.Event()
        self.task: asyncio.Task[Any] | None = None
        self.abandoned = False

    def start(self) -> None:
        """On the loop: run the coroutine as a task (unless the caller gave up already)."""
        if self.abandoned:
            self.coroutine.close()
            return
        self.task = self.loop.create_task(self.coroutine)
        self.task.add_done_callback(lambda _: self.done.set())

    def cancel(self) -> None:
        """From the caller: give up; the task is cancelled when the loop gets to it."""
        self.abandoned = True
        self.loop.call_soon_threadsafe(self._cancel)

    def _cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()


class ThreadLoop:
    """An event loop running forever on a background thread; each call is handed over."""

    mode: Mode = "thread"

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread: threading.Thread | None = threading.Thread(
            target=self.loop.run_forever, name="connector-loop", daemon=True
        )
        self.thread.start()
        self._blocked_since: str | None = None
        self._probe: threading.Event | None = None

    @property
    def blocked_since(self) -> str | None:
        """The call that found the loop blocked, until the loop answers a probe again."""
        if self._blocked_since is not None and self._probe is not None and self._probe.is_set():
            self._blocked_since = None
        return self._blocked_since

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float, label: str) -> T:
        """Hand the coroutine to the loop thread and wait for it at most ``timeout``."""
        pending = _Pending(self.loop, coroutine)
        self.loop.call_soon_threadsafe(pending.start)
        try:
            finished = pending.done.wait(timeout)
        except BaseException:  # interrupted while waiting (Ctrl-C): give the call up
            pending.cancel()
            raise
        task = pending.task
        if not finished or task is None:
            pending.cancel()
            detail = f"no answer to {label} within {timeout} s"
            if self._alive():
                raise CallFailedError("timeout", detail)
            self._blocked_since = label
            detail += "; the connector blocked its event loop and is marked dead"
            raise CallFailedError("timeout", detail, blocked=True)
        try:
            return cast(T, task.result())
        except BaseException as exc:  # the coroutine raised (CancelledError, SystemExit)
            raise CallFailedError("crash", _describe(exc), error=exc) from exc

    def _alive(self) -> bool:
        probe = threading.Event()
        self.loop.call_soon_threadsafe(probe.set)
        self._probe = probe
        return probe.wait(_DEAD_PROBE_SECONDS)

    def close(self, shutdown: Shutdown | None, timeout: float) -> None:
        """Run ``shutdown()`` (bounded, unless blocked), stop the loop, let the thread go."""
        thread, self.thread = self.thread, None
        if thread is None:
            return
        loop = self.loop
        blocked = self.blocked_since is not None
        if shutdown is not None and not blocked:
            future = asyncio.run_coroutine_threadsafe(shutdown(), loop)
            with contextlib.suppress(Exception):
                future.result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(_DEAD_PROBE_SECONDS if blocked else timeout)
        if not thread.is_alive():
            loop.close()
