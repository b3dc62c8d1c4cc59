"""Snowpark sessions lent to one thread at a time, so viewers of one app process do not queue behind a single
session: the container runtime serves every viewer from one process, and each viewer's script runs in a
thread of its own.

A thread leases a session for a statement, a transaction or any sequence that changes the session's state
(its warehouse); leases nest within a thread and then share the session. A session serves one thread at a time,
so a transaction never takes in another thread's statement. With one session (the warehouse runtime's active
session, which cannot be opened twice, or a caller that gives no way to open more) leasing is the old lock.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any


class SessionPool:
    def __init__(self, first: Any, open_more: Callable[[], Any] | None = None, size: int = 1) -> None:
        self._first = first
        self._open_more = open_more
        self._size = max(1, size) if open_more is not None else 1
        self._idle: list[Any] = [first]
        self._count = 1  # sessions open or being opened
        self._sessions: list[Any] = [first]
        self._available = threading.Condition()
        self._local = threading.local()

    @property
    def size(self) -> int:
        return self._size

    def current(self) -> Any:
        """The session this thread holds, else the first one (for reads of its settings)."""
        return getattr(self._local, "session", None) or self._first

    def sessions(self) -> list[Any]:
        return list(self._sessions)

    @contextlib.contextmanager
    def lease(self) -> Iterator[Any]:
        held = getattr(self._local, "session", None)
        if held is not None:  # nested within this thread's lease: the same session
            yield held
            return
        self._local.session = self._take()
        try:
            yield self._local.session
        finally:
            session, self._local.session = self._local.session, None  # a reconnected one, if it was replaced
            self._give(session)

    def replace_current(self, fresh: Any) -> None:
        """The thread's session was lost and `fresh` opened in its place: it serves from now on."""
        old = self.current()
        self._sessions = [fresh if s is old else s for s in self._sessions]
        if old is self._first:
            self._first = fresh
        if getattr(self._local, "session", None) is old:
            self._local.session = fresh

    def _take(self) -> Any:
        with self._available:
            while not self._idle and self._count >= self._size:
                self._available.wait()
            if self._idle:
                return self._idle.pop()
            self._count += 1  # opened below, outside the lock: opening a session takes a while
        try:
            assert self._open_more is not None
            session = self._open_more()
        except BaseException:
            with self._available:
                self._count -= 1
                self._available.notify()
            raise
        with self._available:
            self._sessions.append(session)
        return session

    def _give(self, session: Any) -> None:
        with self._available:
            self._idle.append(session)
            self._available.notify()

    def close(self) -> None:
        for session in self._sessions:
            with contextlib.suppress(Exception):
                session.close()
