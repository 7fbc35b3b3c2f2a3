"""Header stamps in nanoseconds: the one rule for dataset-replay stamps, and (sec, nanosec) conversion.

Bags written from a dataset (``bag from-dataset``, :func:`anomaly_seg_ros.bag.write_bag`) and offline
evaluation of a dataset (:func:`anomaly_seg_ros.eval.offline.frame_stamp`) both stamp frame ``i`` with
:func:`frame_stamp`, so a frame keeps its stamp whichever way it travels.
"""

from __future__ import annotations

__all__ = ['NS_PER_S', 'STAMP0_NS', 'format_ns', 'frame_stamp', 'split_ns']

NS_PER_S = 1_000_000_000

#: first stamp of a dataset replay; the default start of `bag from-dataset` bags
STAMP0_NS = 1_700_000_000_000_000_000


def frame_stamp(index: int, rate_hz: float = 10.0, start_ns: int = STAMP0_NS) -> int:
    """Header stamp (ns) of frame ``index`` of a dataset replayed at ``rate_hz`` from ``start_ns``."""
    return int(start_ns) + round(index * 1e9 / rate_hz)


def split_ns(stamp_ns: int) -> tuple[int, int]:
    """Nanoseconds since the epoch -> (sec, nanosec) as builtin_interfaces/Time holds them."""
    sec, nanosec = divmod(int(stamp_ns), NS_PER_S)
    return sec, nanosec


def format_ns(stamp_ns: int) -> str:
    """'sec.nanosec' with nine decimals, the way ``ros2 topic echo`` reads."""
    sec, nanosec = split_ns(stamp_ns)
    return f'{sec}.{nanosec:09d}'
