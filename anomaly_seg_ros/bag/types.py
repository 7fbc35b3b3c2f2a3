"""What reading a bag gives back: frames, problems (topic, message index, reason) and the read report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from anomaly_seg_ros.data.sample import Sample

__all__ = ['DEFAULT', 'BagFrame', 'BagIssue', 'BagReadReport', 'DefaultTopic']


class DefaultTopic:
    """Marker for a ground-truth topic argument left at its default: the BagTopics name if the bag has it."""

    def __repr__(self) -> str:
        return 'DEFAULT'


DEFAULT: Any = DefaultTopic()


@dataclass
class BagFrame:
    """One image message with its ground truth.

    index:    index of the image message in the image topic (0-based, bag order).
    stamp_ns: its header stamp in nanoseconds.
    sample:   image decoded to RGB; labels / anomaly from the ground-truth topics (None if absent);
              name ``'<bag name>-<index:06d>'``.
    frame_id: its header frame_id.
    """

    index: int
    stamp_ns: int
    sample: Sample
    frame_id: str


class BagIssue(NamedTuple):
    """One problem: the topic, the message index in that topic (None: not tied to a message), why."""

    topic: str
    # a public field name that shadows tuple.index(); NamedTuple allows it at runtime
    index: int | None  # type: ignore[assignment]
    reason: str

    def __str__(self) -> str:
        if self.index is None:
            return f'{self.topic}: {self.reason}'
        return f'{self.topic} message {self.index}: {self.reason}'


@dataclass
class BagReadReport:
    """What :class:`~anomaly_seg_ros.bag.BagReader` read and skipped, with reasons. Complete once ``finished``."""

    path: str
    storage: str = ''
    image_topic: str = ''
    anomaly_topic: str | None = None
    labels_topic: str | None = None
    frames: int = 0  # frames yielded
    messages: dict[str, int] = field(default_factory=dict)  # messages read per topic
    skipped: list[BagIssue] = field(default_factory=list)
    warnings: list[BagIssue] = field(default_factory=list)
    unmatched: dict[str, list[int]] = field(default_factory=dict)  # GT topic -> message indices
    failure: BagIssue | None = None  # truncated/corrupt bag: where reading stopped and why
    # damaged MCAP chunks skipped (each also one ``skipped`` issue): chunk (number in file order), offset
    # (byte), reason, start_ns/end_ns (log-time range), messages ({topic: [message indices]}; None: unknown)
    chunks_lost: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    finished: bool = False

    @property
    def ok(self) -> bool:
        """True when everything was read and nothing was skipped, suspicious or unmatched."""
        return self.finished and not (self.skipped or self.warnings or self.failure or any(self.unmatched.values()))

    @property
    def issues(self) -> list[BagIssue]:
        """Every problem as (topic, index, reason): skipped, warnings, unmatched, then the failure."""
        out = [*self.skipped, *self.warnings]
        for topic, indices in self.unmatched.items():
            out.extend(BagIssue(topic, i, 'no image message with the same header stamp') for i in indices)
        if self.failure is not None:
            out.append(self.failure)
        return out

    def summary(self) -> str:
        """A few human-readable lines."""
        lines = [
            f'bag {self.path} ({self.storage}): {self.frames} frames from {self.image_topic}'
            f' (anomaly: {self.anomaly_topic}, labels: {self.labels_topic})',
            '  messages read: ' + ', '.join(f'{t} {n}' for t, n in self.messages.items()),
        ]
        lines += [f'  skipped {x}' for x in self.skipped]
        lines += [f'  warning {x}' for x in self.warnings]
        lines += [f'  unmatched {t} messages {idx}' for t, idx in self.unmatched.items() if idx]
        if self.failure is not None:
            lines.append(f'  FAILED {self.failure}')
        lines += [f'  note: {x}' for x in self.notes]
        if not self.finished:
            lines.append('  (not read to the end)')
        return '\n'.join(lines)
