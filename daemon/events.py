"""The events exchange: publish once, fan out to every subscriber, replay recent history.

Each subscriber has its own bounded queue, so a slow reader can never block the lifecycle: when
its queue is full it is dropped (its stream ends) rather than the publisher waiting. A small ring
buffer of recent events serves `since` (replay) and `until` (end of stream).
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from ctrd.errdefs import InvalidArgument


@dataclass(frozen=True, slots=True)
class Event:
    type: str  # container | image | network
    action: str  # create, start, die, stop, kill, pause, unpause, destroy, oom, restart, ...
    id: str
    attributes: Mapping[str, str] = field(default_factory=dict)
    time_nano: int = 0

    FILTERS: ClassVar[frozenset[str]] = frozenset({"container", "event", "type", "image"})

    def matches(self, filters: Mapping[str, str]) -> bool:
        for key, value in filters.items():
            if key == "container" and value not in (self.id, self.attributes.get("name", "")) and not (
                len(value) >= 1 and self.id.startswith(value)
            ):
                return False
            # docker: "health_status" also matches "health_status: healthy" (the part before ':')
            if key == "event" and value not in (self.action, self.action.partition(":")[0]):
                return False
            if key == "type" and value != self.type:
                return False
            if key == "image" and value != self.attributes.get("image"):
                return False
        return True


_END = Event("", "", "")


class Exchange:
    def __init__(self, history: int = 1024, queue_size: int = 1024) -> None:
        self._ring: collections.deque[Event] = collections.deque(maxlen=history)
        self._subscribers: set[asyncio.Queue[Event]] = set()
        self._queue_size = queue_size
        self._last_nano = 0

    def publish(self, type_: str, action: str, id_: str, **attributes: str) -> Event:
        now = time.time_ns()
        # strictly increasing stamps keep since/until replay unambiguous
        now = max(now, self._last_nano + 1)
        self._last_nano = now
        ev = Event(type_, action, id_, dict(attributes), now)
        self._ring.append(ev)
        for q in list(self._subscribers):
            try:
                q.put_nowait(ev)
            except asyncio.QueueFull:
                self._subscribers.discard(q)  # too slow: end its stream, never block publishers
                q.get_nowait()
                q.put_nowait(_END)
        return ev

    def close(self) -> None:
        """End every stream (daemon shutdown)."""
        for q in list(self._subscribers):
            self._subscribers.discard(q)
            try:
                q.put_nowait(_END)
            except asyncio.QueueFull:
                q.get_nowait()
                q.put_nowait(_END)

    def history(self) -> list[Event]:
        return list(self._ring)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    async def subscribe(
        self, since: float = 0.0, until: float = 0.0, filters: Mapping[str, str] | None = None
    ) -> AsyncIterator[Event]:
        """Events from `since` (0 = only new ones) until `until` (0 = forever), filtered."""
        filters = filters or {}
        for key in filters:
            if key not in Event.FILTERS:
                raise InvalidArgument(f"filters: invalid filter {key!r} ({', '.join(sorted(Event.FILTERS))})")
        if since < 0 or until < 0:
            raise InvalidArgument("since: times are unix seconds and not negative")
        since_ns = int(since * 1e9)
        until_ns = int(until * 1e9)
        q: asyncio.Queue[Event] = asyncio.Queue(self._queue_size)
        self._subscribers.add(q)  # subscribe before replaying: nothing published in between is lost
        try:
            last = 0
            if since_ns:
                for ev in list(self._ring):
                    if ev.time_nano < since_ns:
                        continue
                    if until_ns and ev.time_nano > until_ns:
                        return
                    last = ev.time_nano
                    if ev.matches(filters):
                        yield ev
            if until_ns and time.time_ns() > until_ns:
                return
            while True:
                timeout = None
                if until_ns:
                    timeout = max(0.0, (until_ns - time.time_ns()) / 1e9)
                try:
                    ev = await asyncio.wait_for(q.get(), timeout)
                except TimeoutError:
                    return
                if ev is _END:
                    return
                if ev.time_nano <= last:
                    continue  # already replayed
                if until_ns and ev.time_nano > until_ns:
                    return
                if ev.matches(filters):
                    yield ev
        finally:
            self._subscribers.discard(q)
