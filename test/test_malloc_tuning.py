"""glibc malloc tuning (ros/malloc_tuning.py): frame-sized buffers come from the reused heap, not fresh mmaps."""

from __future__ import annotations

import subprocess
import sys

import pytest

from anomaly_seg_ros.ros.malloc_tuning import MMAP_THRESHOLD, tune_malloc_for_frames

# In a fresh interpreter: bytes glibc holds in mmapped blocks while an 8 MB array (a 2048x1024 float32 score
# map) is alive, before and after tuning. mallinfo2 is glibc 2.33+.
_PROBE = """
import ctypes, numpy as np
from anomaly_seg_ros.ros.malloc_tuning import tune_malloc_for_frames
class M(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ('arena', 'ordblks', 'smblks', 'hblks', 'hblkhd',
                                                'usmblks', 'fsmblks', 'uordblks', 'fordblks', 'keepcost')]
libc = ctypes.CDLL('libc.so.6'); libc.mallinfo2.restype = M
def mapped_while_alive():
    base = libc.mallinfo2().hblkhd
    a = np.ones((1024, 2048), np.float32)
    grown = libc.mallinfo2().hblkhd - base
    del a
    return grown
print(mapped_while_alive(), repr(tune_malloc_for_frames()), mapped_while_alive(), mapped_while_alive())
"""


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc malloc tuning is Linux-only')
def test_tuning_serves_frame_buffers_from_the_heap() -> None:
    import ctypes

    if not hasattr(ctypes.CDLL('libc.so.6'), 'mallinfo2'):
        pytest.skip('glibc older than 2.33 has no mallinfo2 to observe the effect with')
    out = subprocess.run([sys.executable, '-c', _PROBE], capture_output=True, text=True, timeout=60, check=True)
    before, message, after, again = out.stdout.split()
    assert int(before) >= 8 * 1024 * 1024, out.stdout  # glibc's default: an 8 MB buffer is its own mmap
    assert message == "''", out.stdout  # applied
    assert int(after) == 0 and int(again) == 0, out.stdout  # tuned: from the heap, every time


def test_tuning_reports_instead_of_failing_where_it_cannot_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, 'platform', 'darwin')
    assert 'not tuned' in tune_malloc_for_frames() and 'darwin' in tune_malloc_for_frames()
    assert MMAP_THRESHOLD <= 32 * 1024 * 1024  # glibc refuses more on 64-bit systems
