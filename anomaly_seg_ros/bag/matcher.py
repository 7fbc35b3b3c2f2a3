"""Pair image messages with their ground truth by equal header stamp: a pure state machine, no I/O.

:class:`StampMatcher` is fed events ``(kind, stamp, index, payload)`` in bag order, where ``kind`` is
:data:`IMAGE` or a ground-truth role ('anomaly', 'labels', ...), ``index`` the message index in its
topic and ``payload`` whatever the caller wants back (a decoded array, None for an undecodable one).
Each :meth:`~StampMatcher.push` and the final :meth:`~StampMatcher.finish` return what became known:

- :class:`Match`: an image with the ground truth found for it (possibly none), in image order;
- :class:`StampBackwards` / :class:`StampRepeats`: an image stamp lower than / equal to the previous one;
- :class:`DuplicateStamp`: a waiting ground-truth message with the stamp of one already waiting;
- :class:`Unmatched`: a ground-truth message no image took (evicted from the window, or left at the end).

Ground truth may come before or after its image. Memory is bounded by ``window``: at most ``window``
images wait (the oldest is released, with what it has, when one more arrives) and at most ``window``
unpaired ground-truth messages are kept per role (the oldest is dropped as unmatched). An image stops
waiting for a role once the role is used up (``totals``: its message count, when known) or ``lag``
messages of that role with later stamps have come after it, so one stray or out-of-order message does
not release it too early. Images are released in arrival order: one waiting image holds back the rest.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from anomaly_seg_ros.errors import BagError
from anomaly_seg_ros.stamps import format_ns

__all__ = [
    'IMAGE',
    'DuplicateStamp',
    'GroundTruthRef',
    'Match',
    'MatchEvent',
    'StampBackwards',
    'StampMatcher',
    'StampRepeats',
    'Unmatched',
]

IMAGE = 'image'

ImageT = TypeVar('ImageT')
TruthT = TypeVar('TruthT')


@dataclass(frozen=True)
class GroundTruthRef(Generic[TruthT]):
    """A ground-truth message handed to an image: its index in its topic, stamp and payload."""

    index: int
    stamp: int
    payload: TruthT


@dataclass
class Match(Generic[ImageT, TruthT]):
    """An image released with the ground truth found for it, by role; roles not in it had none."""

    index: int
    stamp: int
    payload: ImageT
    ground_truth: dict[str, GroundTruthRef[TruthT]] = field(default_factory=dict)
    # per role: ground-truth messages with a later stamp that came after this image
    later: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class StampBackwards:
    """Image ``index`` has a lower stamp than the image before it (``previous_index``)."""

    index: int
    stamp: int
    previous_stamp: int
    previous_index: int

    @property
    def reason(self) -> str:
        return (
            f'stamp {format_ns(self.stamp)} < previous {format_ns(self.previous_stamp)} (message {self.previous_index})'
        )


@dataclass(frozen=True)
class StampRepeats:
    """Image ``index`` has the same stamp as the image before it."""

    index: int
    stamp: int
    previous_index: int

    @property
    def reason(self) -> str:
        return f'stamp {format_ns(self.stamp)} repeats message {self.previous_index}'


@dataclass(frozen=True)
class DuplicateStamp:
    """Ground-truth message ``index`` of ``role`` has the stamp of ``first_index``, which is still waiting;
    the newer one is dropped."""

    role: str
    index: int
    stamp: int
    first_index: int

    @property
    def reason(self) -> str:
        return f'header stamp {format_ns(self.stamp)} repeats message {self.first_index} of this topic'


@dataclass(frozen=True)
class Unmatched:
    """Ground-truth message ``index`` of ``role`` found no image; ``evicted``: pushed out of the window."""

    role: str
    index: int
    evicted: bool


MatchEvent = Match[ImageT, TruthT] | StampBackwards | StampRepeats | DuplicateStamp | Unmatched


class StampMatcher(Generic[ImageT, TruthT]):
    """Stamp pairing of one image stream with the ground-truth streams ``roles`` (see the module docstring).

    roles:  ground-truth kinds taken by :meth:`push` besides :data:`IMAGE`.
    window: images waiting / unpaired ground truth kept per role (>= 1).
    totals: per role, how many messages the topic has, if known: once that many were pushed, images
            stop waiting for it.
    lag:    later-stamped messages of a role after which an image stops waiting for that role.
    """

    def __init__(
        self,
        roles: Sequence[str],
        *,
        window: int = 64,
        totals: Mapping[str, int | None] | None = None,
        lag: int = 2,
    ) -> None:
        if int(window) < 1:
            raise BagError(f'window must be >= 1, got {window!r}')
        if IMAGE in roles or len(set(roles)) != len(roles):
            raise BagError(f'ground-truth roles must be distinct and not {IMAGE!r}, got {list(roles)}')
        self.roles = tuple(roles)
        self.window = int(window)
        self.lag = int(lag)
        self.totals = {r: (totals or {}).get(r) for r in self.roles}
        self._pending: deque[Match[ImageT, TruthT]] = deque()
        self._buffers: dict[str, OrderedDict[int, GroundTruthRef[TruthT]]] = {r: OrderedDict() for r in self.roles}
        self._seen = dict.fromkeys(self.roles, 0)
        self._previous: tuple[int, int] | None = None  # (stamp, index) of the previous image

    @property
    def waiting(self) -> int:
        """Images not released yet."""
        return len(self._pending)

    def buffered(self, role: str) -> list[int]:
        """Indices of the unpaired ground-truth messages of ``role`` kept now, oldest first."""
        return [g.index for g in self._buffers[role].values()]

    def push(self, kind: str, stamp: int, index: int, payload: ImageT | TruthT) -> list[MatchEvent[ImageT, TruthT]]:
        """Take one message; return the problems it shows and the images it lets go, in that order."""
        if kind == IMAGE:
            events = self._image(stamp, index, payload)  # type: ignore[arg-type]
        elif kind in self._buffers:
            events = self._ground_truth(kind, stamp, index, payload)  # type: ignore[arg-type]
        else:
            raise BagError(f'unknown message kind {kind!r}; expected {IMAGE!r} or one of {list(self.roles)}')
        events.extend(self._release(force=False))
        return events

    def finish(self) -> list[MatchEvent[ImageT, TruthT]]:
        """End of input: every waiting image, then every kept ground-truth message as unmatched."""
        events: list[MatchEvent[ImageT, TruthT]] = list(self._release(force=True))
        for role in self.roles:
            events.extend(Unmatched(role, g.index, evicted=False) for g in self._buffers[role].values())
            self._buffers[role].clear()
        return events

    def _image(self, stamp: int, index: int, payload: ImageT) -> list[MatchEvent[ImageT, TruthT]]:
        events: list[MatchEvent[ImageT, TruthT]] = []
        if self._previous is not None:
            prev, prev_index = self._previous
            if stamp < prev:
                events.append(StampBackwards(index, stamp, prev, prev_index))
            elif stamp == prev:
                events.append(StampRepeats(index, stamp, prev_index))
        self._previous = (stamp, index)
        entry: Match[ImageT, TruthT] = Match(index, stamp, payload)
        for role in self.roles:
            gt = self._buffers[role].pop(stamp, None)
            if gt is not None:
                entry.ground_truth[role] = gt
        self._pending.append(entry)
        return events

    def _ground_truth(self, role: str, stamp: int, index: int, payload: TruthT) -> list[MatchEvent[ImageT, TruthT]]:
        self._seen[role] += 1
        gt = GroundTruthRef(index, stamp, payload)
        for entry in self._pending:
            if role not in entry.ground_truth and stamp > entry.stamp:
                entry.later[role] = entry.later.get(role, 0) + 1
        for entry in self._pending:
            if entry.stamp == stamp and role not in entry.ground_truth:
                entry.ground_truth[role] = gt
                return []
        buf = self._buffers[role]
        if stamp in buf:
            return [DuplicateStamp(role, index, stamp, buf[stamp].index)]
        buf[stamp] = gt
        if len(buf) > self.window:
            _, old = buf.popitem(last=False)
            return [Unmatched(role, old.index, evicted=True)]
        return []

    def _complete(self, entry: Match[ImageT, TruthT]) -> bool:
        for role in self.roles:
            if role in entry.ground_truth:
                continue
            total = self.totals[role]
            if total is not None and self._seen[role] >= total:
                continue  # every message of this role has been pushed
            if entry.later.get(role, 0) >= self.lag:
                continue  # this role has moved past the image's stamp
            return False
        return True

    def _release(self, force: bool) -> list[Match[ImageT, TruthT]]:
        out: list[Match[ImageT, TruthT]] = []
        while self._pending:
            entry = self._pending[0]
            if not (force or len(self._pending) > self.window or self._complete(entry)):
                break
            out.append(self._pending.popleft())
        return out
