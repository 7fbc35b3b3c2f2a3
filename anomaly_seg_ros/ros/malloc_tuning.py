"""glibc malloc settings for a process that moves camera frames through ROS.

Every frame makes a few multi-megabyte buffers per hop (the Python message's array, rclpy's C message, the
serialised payload, the received sample). glibc serves such sizes with a fresh mmap by default (its threshold
starts at 128 KB and adapts only up to the size of the last freed block), and the kernel then zero-fills each
of their pages on first touch: thousands of page faults per frame, in every copy. With the threshold and the
trim threshold raised, freed frame buffers stay in the heap and are reused, already mapped.

Measured here (2 cores, Kilted wheels, a 2048x1024 rgb8 frame out and a mono8 + a 32FC1 map of that size
back between two processes, 40 frames, one in flight): round trip p50 31.0 / 31.9 ms with glibc's defaults,
17.6 / 12.6 ms with both processes tuned (two alternating runs, MALLOC_* environment variables; `mallopt`
here does the same from inside the process). The cost: up to `trim_threshold` of freed memory is kept
mapped instead of returned to the system (the node's RSS stays at its working set plus that slack; the soak
in `anomaly-seg bench --soak` shows the slope).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ['MMAP_THRESHOLD', 'TRIM_THRESHOLD', 'tune_malloc_for_frames']

#: allocations up to this size come from the heap (glibc's default starts at 128 KB; a 2048x1024 float32 map
#: is 8 MB, a 4096x2160 rgb8 frame 26.5 MB). 32 MB is the largest value glibc accepts on 64-bit systems
#: (DEFAULT_MMAP_THRESHOLD_MAX); bigger frames still get their own mmap.
MMAP_THRESHOLD = 32 * 1024 * 1024
#: freed memory at the top of the heap is returned to the system only above this: more than a frame's few
#: buffers need (about 30 MB at 2048x1024), little enough that the heap does not creep. Measured with
#: `anomaly-seg bench --soak 3000 --overload 2 --overload-frames 500 --rate 15 --sizes 1024x512 --backend
#: onnxruntime` (CPU shared with other work): 256 MB gave an RSS slope of +2.62 MB per 1000 frames (645 -> 692
#: MB), 64 MB +0.13 (684 -> 686 MB).
TRIM_THRESHOLD = 64 * 1024 * 1024

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def tune_malloc_for_frames() -> str:
    """Apply MMAP_THRESHOLD and TRIM_THRESHOLD with glibc's mallopt; returns what was done, for the log
    ('' when applied, else why not: not Linux/glibc, or mallopt refused)."""
    if not sys.platform.startswith('linux'):
        return f'not tuned: malloc tuning is for glibc on Linux, this is {sys.platform}'
    name = ctypes.util.find_library('c') or 'libc.so.6'
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError) as e:
        return f'not tuned: no glibc mallopt in {name} ({e})'
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # mmap threshold first: setting it also turns off glibc's adaptive threshold
    if mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) != 1 or mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) != 1:
        return f'not tuned: mallopt refused the thresholds in {name}'
    return ''
