"""TensorRT backend: engine cache, calibration, frame-size policy and the build-engine command, without TensorRT.

Everything that does not need TensorRT runs here: the engine key and cache rules (hit, miss, stale, damaged,
lock) with a builder callable that counts builds; int8 calibration feeders from PNGs and a bag; the host
resize fallback; the build code against a stand-in `tensorrt` module that records what it was asked (the
real API names were checked against the TensorRT 10 docs); the backend's orchestration with that stand-in and
a CPU runner. Tests needing a CUDA GPU, or TensorRT and a GPU, skip with the reason (test/gpu_check.sh runs
them on a GPU machine).
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest
import torch

from anomaly_seg_ros import defaults
from anomaly_seg_ros.backends import calibration as calib
from anomaly_seg_ros.backends import engine_cache as ec
from anomaly_seg_ros.backends import tensorrt_backend as tb
from anomaly_seg_ros.cli import build_parser, main
from anomaly_seg_ros.errors import BackendError, DatasetError

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason='no CUDA GPU on this machine (test/gpu_check.sh runs these)')
_TRT_REASON = tb.capabilities().available
needs_trt = pytest.mark.skipif(_TRT_REASON is not None, reason=f'tensorrt backend unavailable here: {_TRT_REASON}')

KEY = ec.EngineKey(
    onnx_sha256='a' * 64,
    trt_version='10.9.0.34',
    gpu_name='NVIDIA H200',
    compute_capability='9.0',
    precision='fp16',
    width=128,
    height=64,
    stem='tiny-entropy',
)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv('ANOMALY_SEG_CACHE', str(tmp_path / 'cache'))
    return tmp_path / 'cache'


class CountingBuilder:
    def __init__(self, data: bytes = b'ENGINE-bytes', delay_s: float = 0.0) -> None:
        self.data = data
        self.delay_s = delay_s
        self.builds = 0

    def __call__(self) -> bytes:
        self.builds += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        return self.data + str(self.builds).encode()


# ------------------------------------------------------------------------------------------------ engine key


def test_engine_key_changes_with_each_part() -> None:
    changes = {
        'onnx_sha256': 'b' * 64,
        'trt_version': '10.10.0',
        'gpu_name': 'NVIDIA A100',
        'compute_capability': '8.0',
        'precision': 'fp32',
        'width': 256,
        'height': 128,
    }
    names = {KEY.file_name()}
    for field, value in changes.items():
        other = replace(KEY, **{field: value})
        assert other.digest() != KEY.digest(), field
        names.add(other.file_name())
    int8 = replace(KEY, precision='int8', calibration_sha256='c' * 64)
    names.add(int8.file_name())
    names.add(replace(int8, calibration_sha256='d' * 64).file_name())
    assert len(names) == len(changes) + 3  # every part gives its own file
    # the stem only makes the name readable: same identity, another file name
    renamed = replace(KEY, stem='other')
    assert renamed.digest() == KEY.digest() and renamed.file_name() != KEY.file_name()


def test_engine_key_names_its_parts_and_refuses_bad_ones() -> None:
    name = KEY.file_name()
    assert name.startswith('tiny-entropy-128x64-fp16-trt10.9.0.34-NVIDIA-H200-sm90-') and name.endswith('.engine')
    assert KEY.identity()['onnx_sha256'] == 'a' * 64 and 'stem' not in KEY.identity()
    with pytest.raises(BackendError, match='precision'):
        replace(KEY, precision='int4')
    with pytest.raises(BackendError, match='int8 engine key needs the sha256 of its calibration cache'):
        replace(KEY, precision='int8')
    with pytest.raises(BackendError, match='only an int8 key'):
        replace(KEY, calibration_sha256='c' * 64)
    with pytest.raises(BackendError, match='both sides'):
        replace(KEY, width=0)


def test_engines_live_in_the_project_cache(cache: Path) -> None:
    assert ec.engine_dir() == cache / 'engines'
    assert KEY.path() == cache / 'engines' / KEY.file_name()
    timing = ec.timing_cache_path('10.9.0', 'NVIDIA H200', '9.0')
    assert timing == cache / 'engines' / 'timing' / 'trt10.9.0-NVIDIA-H200-sm90.timing'
    assert ec.timing_cache_path('10.9.0', 'NVIDIA A100', '8.0') != timing


# --------------------------------------------------------------------------------------- hit / miss / damage


def test_cache_hit_miss_stale_and_damaged(cache: Path, caplog: pytest.LogCaptureFixture) -> None:
    build = CountingBuilder()
    first = ec.get_or_build(KEY, build)
    assert first.built and build.builds == 1 and first.path.read_bytes() == b'ENGINE-bytes1'
    assert ec.lookup(KEY) == first.path
    second = ec.get_or_build(KEY, build)
    assert not second.built and build.builds == 1 and second.path == first.path
    # another TensorRT version: a new file name, so a new build; the old file is left alone and named in the log
    stale = replace(KEY, trt_version='10.10.0')
    assert ec.lookup(stale) is None
    with caplog.at_level(logging.INFO):
        third = ec.get_or_build(stale, build)
    assert third.built and build.builds == 2 and third.path != first.path and first.path.exists()
    assert first.path.name in caplog.text
    # damaged bytes (sha256 no longer matches): rebuilt with a warning
    first.path.write_bytes(b'ENGINE-bytes1 but truncated')
    assert ec.lookup(KEY) is None
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        fourth = ec.get_or_build(KEY, build)
    assert fourth.built and build.builds == 3 and 'damaged' in caplog.text
    assert ec.lookup(KEY) == first.path
    # a missing digest is an unverified entry: rebuilt too
    first.path.with_name(first.path.name + '.sha256').unlink()
    assert ec.get_or_build(KEY, build).built and build.builds == 4


def test_a_failed_build_leaves_no_entry(cache: Path) -> None:
    def fails() -> bytes:
        raise BackendError('parser said no')

    with pytest.raises(BackendError, match='parser said no'):
        ec.get_or_build(KEY, fails)
    assert ec.lookup(KEY) is None and not KEY.path().exists()
    with pytest.raises(BackendError, match='empty'):
        ec.get_or_build(KEY, lambda: b'')
    assert ec.get_or_build(KEY, CountingBuilder()).built
    assert not list((cache / 'engines').glob('*.tmp*'))


def test_two_builders_of_one_engine_build_it_once(cache: Path) -> None:
    build = CountingBuilder(delay_s=0.4)
    results: list[ec.CachedEngine] = []
    statuses: list[str] = []

    def worker() -> None:
        results.append(ec.get_or_build(KEY, build, on_status=statuses.append))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
        time.sleep(0.1)  # the first one holds the lock when the second arrives
    for t in threads:
        t.join()
    assert build.builds == 1
    assert sorted(r.built for r in results) == [False, True]
    assert results[0].path == results[1].path
    assert any(s.startswith('building engine 128x64 fp16') for s in statuses)
    assert any(s.startswith('waiting for another process building engine 128x64') for s in statuses)


def test_the_lock_excludes_another_process(tmp_path: Path) -> None:
    target = tmp_path / 'x.engine'
    holder = subprocess.Popen(
        [
            sys.executable,
            '-c',
            'import fcntl, sys, time\n'
            f'f = open({str(target) + ".lock"!r}, "w"); fcntl.flock(f, fcntl.LOCK_EX)\n'
            'print("locked", flush=True); time.sleep(1.0)',
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == 'locked'
        waited: list[bool] = []
        with pytest.raises(BackendError, match='waited 0.2 s'):
            with ec.FileLock(target, timeout_s=0.2, poll_s=0.05, on_wait=lambda: waited.append(True)):
                pass
        assert waited == [True]
        t0 = time.monotonic()
        with ec.FileLock(target):  # blocks until the other process lets go
            assert holder.poll() is not None or time.monotonic() - t0 > 0.3
    finally:
        holder.wait(timeout=10)


# ------------------------------------------------------------------------------------------ int8 key and cache


def _key_for(sha: str) -> ec.EngineKey:
    return replace(KEY, precision='int8', calibration_sha256=sha)


def test_int8_engine_is_keyed_by_the_calibration_it_was_built_with(
    cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    calib_path = calib.calibration_cache_path('k' * 64, (64, 128))
    assert calib_path.parent == cache / 'engines' and calib_path.name.startswith('calib-128x64-')
    calibrations = 0

    def build() -> bytes:  # what the TensorRT build does: the calibrator reads, else writes, the cache
        nonlocal calibrations
        store = calib.CalibrationCache(calib_path)
        if store.read() is None:
            calibrations += 1
            store.write(b'CALIBRATION-TABLE')
        return b'INT8-ENGINE'

    first = ec.get_or_calibrate_and_build(_key_for, calib_path, build)
    sha = hashlib.sha256(b'CALIBRATION-TABLE').hexdigest()
    assert first.built and first.key.calibration_sha256 == sha and calibrations == 1
    again = ec.get_or_calibrate_and_build(_key_for, calib_path, build)
    assert not again.built and again.path == first.path
    # the engine lost, the calibration kept: rebuilt from the cached calibration, no frames
    ec.discard(first.path)
    rebuilt = ec.get_or_calibrate_and_build(_key_for, calib_path, build)
    assert rebuilt.built and rebuilt.key == first.key and calibrations == 1
    # a damaged calibration cache: calibrated again, with a warning
    calib_path.write_bytes(b'CALIBRATION-TABL')
    with caplog.at_level(logging.WARNING):
        recalibrated = ec.get_or_calibrate_and_build(_key_for, calib_path, build)
    assert recalibrated.built and calibrations == 2 and 'damaged' in caplog.text


def test_two_int8_builders_calibrate_once(cache: Path) -> None:
    calib_path = calib.calibration_cache_path('k' * 64, (64, 128))
    builds = 0
    statuses: list[str] = []

    def build() -> bytes:
        nonlocal builds
        builds += 1
        store = calib.CalibrationCache(calib_path)
        if store.read() is None:
            store.write(b'CALIBRATION-TABLE')  # written early in a real build, minutes before the engine
        time.sleep(0.4)
        return b'INT8-ENGINE'

    results: list[ec.CachedEngine] = []

    def worker() -> None:
        results.append(ec.get_or_calibrate_and_build(_key_for, calib_path, build, on_status=statuses.append))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
        time.sleep(0.1)
    for t in threads:
        t.join()
    assert builds == 1 and sorted(r.built for r in results) == [False, True]
    assert any(s.startswith('waiting for another process calibrating calib-128x64-') for s in statuses)


def test_int8_build_that_writes_no_calibration_is_an_error(cache: Path) -> None:
    calib_path = calib.calibration_cache_path('k' * 64, (64, 128))
    with pytest.raises(BackendError, match='without writing the calibration cache'):
        ec.get_or_calibrate_and_build(_key_for, calib_path, lambda: b'INT8-ENGINE')


def test_calibration_cache_round_trip_and_damage(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = calib.CalibrationCache(tmp_path / 'c.calib')
    assert store.read() is None
    store.write(b'TRT-10-EntropyCalibration2\nframe: 3c010a14\n')
    assert store.read() == b'TRT-10-EntropyCalibration2\nframe: 3c010a14\n'
    (tmp_path / 'c.calib').write_bytes(b'garbage')
    with caplog.at_level(logging.WARNING):
        assert store.read() is None
    assert 'damaged' in caplog.text and not (tmp_path / 'c.calib').exists()


def test_calibration_key_changes_with_each_part() -> None:
    base = ('a' * 64, '10.9', (64, 128), 'source', 200)
    keys = {calib.calibration_key(*base)}
    for i, value in enumerate(('b' * 64, '10.10', (128, 256), 'other', 100)):
        parts = list(base)
        parts[i] = value
        keys.add(calib.calibration_key(*parts))  # type: ignore[arg-type]
    assert len(keys) == 6


# ------------------------------------------------------------------------------------------ calibration frames


def _write_pngs(folder: Path, n: int, hw: tuple[int, int] = (30, 40)) -> list[np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    rgbs = []
    for i in range(n):
        rgb = rng.integers(0, 256, (*hw, 3), dtype=np.uint8)
        assert cv2.imwrite(str(folder / f'frame_{i:02d}.png'), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        rgbs.append(rgb)
    return rgbs


def test_feeder_from_a_folder_of_pngs(tmp_path: Path) -> None:
    rgbs = _write_pngs(tmp_path / 'frames', 5)
    (tmp_path / 'frames' / 'notes.txt').write_text('not an image')
    source = calib.calibration_source(tmp_path / 'frames', limit=3)
    assert source.description.startswith('3 images in')
    progress: list[str] = []
    feeder = calib.BatchFeeder(source, (24, 32), limit=3, progress=progress.append)
    batches = []
    while (batch := feeder.next_batch()) is not None:
        batches.append(batch)
    assert feeder.next_batch() is None and feeder.fed == 3
    assert [b.shape for b in batches] == [(1, 24, 32, 3)] * 3
    assert all(b.dtype == np.uint8 and b.flags['C_CONTIGUOUS'] for b in batches)
    # RGB order and INTER_AREA when shrinking, as the file was written
    expected = cv2.resize(rgbs[0], (32, 24), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(batches[0][0], expected)
    assert progress[0].startswith('int8 calibration: reading up to 3 frames') and progress[-1].endswith('3/3 frames')
    # enlarging uses INTER_LINEAR
    big = calib.BatchFeeder(source, (60, 80), limit=1).next_batch()
    assert big is not None
    np.testing.assert_array_equal(big[0], cv2.resize(rgbs[0], (80, 60), interpolation=cv2.INTER_LINEAR))


def test_folder_identity_follows_the_frames_used(tmp_path: Path) -> None:
    _write_pngs(tmp_path / 'f', 4)
    ident = calib.folder_source(tmp_path / 'f', 3).identity
    assert calib.folder_source(tmp_path / 'f', 3).identity == ident
    assert calib.folder_source(tmp_path / 'f', 2).identity != ident
    # a file beyond the first 3 does not count; one inside does
    (tmp_path / 'f' / 'frame_03.png').write_bytes((tmp_path / 'f' / 'frame_00.png').read_bytes())
    assert calib.folder_source(tmp_path / 'f', 3).identity == ident
    (tmp_path / 'f' / 'frame_01.png').write_bytes((tmp_path / 'f' / 'frame_00.png').read_bytes())
    assert calib.folder_source(tmp_path / 'f', 3).identity != ident


def test_feeder_reads_nothing_until_asked_and_stops_at_the_end() -> None:
    reads = 0

    def read() -> Iterator[np.ndarray]:
        nonlocal reads
        reads += 1
        yield np.zeros((8, 8, 3), np.uint8)
        yield np.full((8, 8, 3), 9, np.uint8)

    progress: list[str] = []
    feeder = calib.BatchFeeder(calib.CalibrationSource('two frames', 'id', read), (8, 8), 5, progress.append)
    assert reads == 0
    assert feeder.next_batch() is not None and feeder.next_batch() is not None
    assert feeder.next_batch() is None and reads == 1 and 'ran out after 2 frames' in progress[-1]


def test_bad_calibration_sources_are_named(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match='does not exist'):
        calib.calibration_source(tmp_path / 'missing', 10)
    (tmp_path / 'empty').mkdir()
    with pytest.raises(BackendError, match='holds no .png'):
        calib.calibration_source(tmp_path / 'empty', 10)
    (tmp_path / 'file.txt').write_text('x')
    with pytest.raises(BackendError, match='neither a folder of images nor a bag'):
        calib.calibration_source(tmp_path / 'file.txt', 10)
    (tmp_path / 'bad').mkdir()
    (tmp_path / 'bad' / 'a.png').write_bytes(b'not a png')
    feeder = calib.BatchFeeder(calib.calibration_source(tmp_path / 'bad', 10), (8, 8), 10)
    with pytest.raises(DatasetError, match='a.png'):
        feeder.next_batch()
    empty = calib.BatchFeeder(calib.CalibrationSource('nothing', 'id', lambda: iter(())), (8, 8), 10)
    with pytest.raises(BackendError, match='no frames in nothing'):
        empty.next_batch()
    wrong = calib.BatchFeeder(calib.CalibrationSource('grey', 'id', lambda: iter([np.zeros((8, 8))])), (8, 8), 1)
    with pytest.raises(BackendError, match='calibration frame 0 of grey: image must be HxWx3 uint8'):
        wrong.next_batch()
    with pytest.raises(BackendError, match='>= 1'):
        calib.BatchFeeder(calib.CalibrationSource('x', 'id', lambda: iter(())), (8, 8), 0)


def _tiny_bag(path: Path, n: int = 3) -> list[np.ndarray]:
    from anomaly_seg_ros.bag import write_bag
    from anomaly_seg_ros.data.sample import Sample

    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (24, 32, 3), dtype=np.uint8) for _ in range(n)]
    write_bag([Sample(image=im, name=f's{i}') for i, im in enumerate(images)], path, progress=False)
    return images


def test_feeder_from_a_bag_through_build_engine(tmp_path: Path) -> None:
    from anomaly_seg_ros.cli.build_engine import bag_calibration_source

    bag = tmp_path / 'run1'
    images = _tiny_bag(bag)
    assert calib.is_bag(bag) and not calib.is_bag(tmp_path)
    source = bag_calibration_source(bag, None)
    assert source.identity == calib.bag_identity(bag)  # the node, given the same bag, finds the same cache
    feeder = calib.BatchFeeder(source, (24, 32), limit=2)
    got = [feeder.next_batch(), feeder.next_batch(), feeder.next_batch()]
    assert got[2] is None
    for batch, image in zip(got[:2], images, strict=False):
        assert batch is not None
        np.testing.assert_array_equal(batch[0], image)
    # the backend layer does not read bags: given one directly, it keys by it and says how to calibrate
    direct = calib.calibration_source(bag, 10)
    assert direct.identity == source.identity
    with pytest.raises(BackendError, match='anomaly-seg build-engine --precision int8 --calibration'):
        calib.BatchFeeder(direct, (24, 32), 1).next_batch()
    from anomaly_seg_ros.errors import BagError

    with pytest.raises(BagError, match='/nope'):
        bag_calibration_source(bag, '/nope')


# -------------------------------------------------------------------------------------- frame-size policy


def _fake_engine_run(frame: np.ndarray) -> dict[str, np.ndarray]:
    h, w = frame.shape[:2]
    return {
        'labels': (frame[..., 0] // 64).astype(np.uint8),
        'score': np.linspace(0.0, 1.0, h * w, dtype=np.float32).reshape(h, w),
        'max_softmax': np.full((h, w), 0.25, np.float32),
    }


def test_run_resized_returns_maps_at_the_frame_size() -> None:
    seen: list[np.ndarray] = []

    def run(frame: np.ndarray) -> dict[str, np.ndarray]:
        seen.append(frame)
        return _fake_engine_run(frame)

    frame = np.random.default_rng(0).integers(0, 256, (100, 200, 3), dtype=np.uint8)
    out = tb.run_resized(frame, (64, 128), run)
    # the engine saw the frame shrunk with INTER_AREA
    np.testing.assert_array_equal(seen[0], cv2.resize(frame, (128, 64), interpolation=cv2.INTER_AREA))
    assert out['labels'].shape == (100, 200) and out['labels'].dtype == np.uint8
    assert out['score'].shape == (100, 200) and out['score'].dtype == np.float32
    # labels nearest: only values the engine produced; score bilinear: inside the engine's range, exact top kept
    engine_maps = _fake_engine_run(seen[0])
    assert set(np.unique(out['labels'])) <= set(np.unique(engine_maps['labels']))
    np.testing.assert_array_equal(
        out['labels'], cv2.resize(engine_maps['labels'], (200, 100), interpolation=cv2.INTER_NEAREST)
    )
    assert 0.0 <= out['score'].min() and out['score'].max() <= 1.0
    assert np.all(out['max_softmax'] == np.float32(0.25))
    # enlarging: INTER_LINEAR; same size: untouched
    tb.run_resized(frame[:40, :60], (64, 128), run)
    np.testing.assert_array_equal(seen[1], cv2.resize(frame[:40, :60], (128, 64), interpolation=cv2.INTER_LINEAR))
    same = tb.run_resized(seen[0], (64, 128), run)
    np.testing.assert_array_equal(same['score'], engine_maps['score'])


def test_size_router_builds_only_the_first_engine() -> None:
    built: list[tuple[int, int]] = []
    asked: list[tuple[int, int]] = []
    warnings: list[str] = []
    in_cache = {(96, 160): 'engine-96x160'}

    def find(hw: tuple[int, int]) -> str | None:
        asked.append(hw)
        return in_cache.get(hw)

    def build(hw: tuple[int, int]) -> str:
        built.append(hw)
        return f'engine-{hw[0]}x{hw[1]}'

    router: tb.SizeRouter[str] = tb.SizeRouter(find, build, warn=warnings.append)
    assert router.route((64, 128)) == ((64, 128), 'engine-64x128') and built == [(64, 128)]
    # a size without an engine: the first engine, resized on the host, one warning, counted
    for _ in range(3):
        assert router.route((100, 200)) == ((64, 128), 'engine-64x128')
    assert built == [(64, 128)] and router.resized_frames == 3 and len(warnings) == 1
    assert '200x100' in warnings[0] and 'anomaly-seg build-engine --size 200x100' in warnings[0]
    # a size whose engine is in the cache: used as is, asked once
    assert router.route((96, 160)) == ((96, 160), 'engine-96x160')
    assert router.route((96, 160)) == ((96, 160), 'engine-96x160')
    assert asked.count((96, 160)) == 1 and asked.count((100, 200)) == 1
    # prepared later: no more resizing
    router.add((100, 200), 'engine-100x200')
    assert router.route((100, 200)) == ((100, 200), 'engine-100x200') and router.resized_frames == 3
    # offline tools may build every new size instead
    eager: tb.SizeRouter[str] = tb.SizeRouter(lambda hw: None, build, build_new_sizes=True)
    eager.route((64, 128))
    assert eager.route((10, 20)) == ((10, 20), 'engine-10x20') and eager.resized_frames == 0


# ---------------------------------------------------------------------------------- availability without TRT


def test_capabilities_say_why_tensorrt_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, 'tensorrt', None)  # import fails, even where TensorRT is installed
    caps = tb.capabilities()
    assert caps.available == tb.TRT_MISSING and caps.fused and caps.devices == ()
    with pytest.raises(BackendError, match='TensorRT is not installed'):
        tb.TensorRTBackend(FakeSource(Path('.')), 'cuda:0')
    monkeypatch.setitem(sys.modules, 'tensorrt', make_fake_trt())
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    assert tb.capabilities().available == tb.NO_CUDA
    with pytest.raises(BackendError, match='no CUDA GPU'):
        tb.TensorRTBackend(FakeSource(Path('.')), 'cuda:0')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    caps = tb.capabilities()
    assert caps.available is None and caps.devices == ('cuda',) and caps.precisions == ('fp32', 'fp16', 'int8')
    monkeypatch.setitem(sys.modules, 'tensorrt', make_fake_trt(version='11.4.1', weak_types=False))
    assert tb.capabilities().precisions == ('fp32',)


def test_backend_arguments_are_checked_before_tensorrt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, 'tensorrt', None)
    src = FakeSource(Path('.'))
    with pytest.raises(BackendError, match="precision 'bf16'"):
        tb.TensorRTBackend(src, 'cuda', 'bf16')
    with pytest.raises(BackendError, match='TensorRT runs on a CUDA device'):
        tb.TensorRTBackend(src, 'cpu')
    with pytest.raises(BackendError, match='workspace_gb must be > 0'):
        tb.TensorRTBackend(src, 'cuda', workspace_gb=0)


# ------------------------------------------------------------------------------ build code, stand-in TensorRT


class _Flags:
    FP16 = 'FP16'
    INT8 = 'INT8'
    TF32 = 'TF32'


class _Severity:
    def __init__(self, name: str) -> None:
        self.name = name


def make_fake_trt(
    version: str = '10.9.0.34',
    weak_types: bool = True,
    parse_errors: tuple[tuple[str, str, str], ...] = (),
    build_fails: bool = False,
) -> Any:
    """A stand-in for the `tensorrt` module with the TensorRT 10 names this backend uses; it records calls."""
    calls: list[tuple[Any, ...]] = []
    flags = _Flags if weak_types else type('Flags', (), {'TF32': 'TF32'})

    class ILogger:
        def __init__(self) -> None:
            pass

    class IInt8EntropyCalibrator2:
        def __init__(self) -> None:
            calls.append(('calibrator',))

    class ParserError:
        def __init__(self, desc: str, node: str, op: str) -> None:
            self._d, self._n, self._o = desc, node, op

        def desc(self) -> str:
            return self._d

        def node(self) -> int:
            return 3

        def node_name(self) -> str:
            return self._n

        def node_operator(self) -> str:
            return self._o

    class OnnxParser:
        def __init__(self, network: Any, logger: Any) -> None:
            self.network = network
            self.num_errors = 0

        def parse_from_file(self, path: str) -> bool:
            calls.append(('parse', path))
            self.network.onnx = Path(path).read_bytes()
            self.num_errors = len(parse_errors)
            return not parse_errors

        def get_error(self, i: int) -> ParserError:
            return ParserError(*parse_errors[i])

    class TimingCache:
        def __init__(self, blob: bytes) -> None:
            self.blob = bytes(blob)

        def serialize(self) -> bytes:
            return self.blob + b'+timings'

    class Config:
        def __init__(self) -> None:
            self.flags = {'TF32'}
            self.int8_calibrator: Any = None

        def set_memory_pool_limit(self, pool: str, size: int) -> None:
            calls.append(('pool', pool, size))

        def set_flag(self, flag: str) -> None:
            self.flags.add(flag)

        def clear_flag(self, flag: str) -> None:
            self.flags.discard(flag)

        def create_timing_cache(self, blob: bytes) -> TimingCache:
            calls.append(('timing_in', bytes(blob)))
            return TimingCache(blob)

        def set_timing_cache(self, cache: TimingCache, ignore_mismatch: bool) -> bool:
            calls.append(('timing_set', ignore_mismatch))
            return True

    class Builder:
        def __init__(self, logger: Any) -> None:
            self.logger = logger

        def create_network(self, flags: int) -> Any:
            calls.append(('network', flags))
            return SimpleNamespace(onnx=b'')

        def create_builder_config(self) -> Config:
            return Config()

        def build_serialized_network(self, network: Any, config: Config) -> bytes | None:
            calls.append(('build', sorted(config.flags)))
            if build_fails:
                self.logger.log(_Severity('ERROR'), 'no implementation for node /Resize')
                return None
            cal = config.int8_calibrator
            if cal is not None and cal.read_calibration_cache() is None:
                n = 0
                while (ptrs := cal.get_batch(['frame'])) is not None:
                    assert len(ptrs) == 1 and isinstance(ptrs[0], int)
                    n += 1
                if n:
                    cal.write_calibration_cache(memoryview(b'CALIB %d frames' % n))
            digest = hashlib.sha256(network.onnx).hexdigest()[:16].encode()
            return b'ENGINE|' + digest + b'|' + ','.join(sorted(config.flags)).encode()

    class Runtime:
        def __init__(self, logger: Any) -> None:
            self.logger = logger

        def deserialize_cuda_engine(self, data: bytes) -> Any:
            calls.append(('deserialize', bytes(data[:6])))
            return SimpleNamespace(data=bytes(data)) if data.startswith(b'ENGINE') else None

    mod = SimpleNamespace(
        __version__=version,
        BuilderFlag=flags,
        MemoryPoolType=SimpleNamespace(WORKSPACE='WORKSPACE'),
        NetworkDefinitionCreationFlag=SimpleNamespace(EXPLICIT_BATCH=0, STRONGLY_TYPED=1),
        TensorIOMode=SimpleNamespace(INPUT='INPUT', OUTPUT='OUTPUT'),
        ILogger=ILogger,
        Builder=Builder,
        OnnxParser=OnnxParser,
        Runtime=Runtime,
        calls=calls,
    )
    if weak_types:
        mod.IInt8EntropyCalibrator2 = IInt8EntropyCalibrator2
    return mod


def _build(trt: Any, tmp_path: Path, precision: str = 'fp16', calibrator: Any = None) -> bytes:
    onnx = tmp_path / 'g.onnx'
    onnx.write_bytes(b'onnx graph')
    return tb.build_serialized_engine(
        trt,
        onnx,
        precision,
        workspace_bytes=1 << 30,
        timing_cache=tmp_path / 'timing' / 't.timing',
        logger=tb.make_logger(trt),
        calibrator=calibrator,
    )


def test_build_sets_precision_workspace_and_timing_cache(tmp_path: Path) -> None:
    trt = make_fake_trt()
    data = _build(trt, tmp_path)
    assert data.startswith(b'ENGINE|') and data.endswith(b'|FP16,TF32')
    assert ('network', 0) in trt.calls  # TensorRT 10: explicit batch is implied
    assert ('pool', 'WORKSPACE', 1 << 30) in trt.calls
    assert ('timing_in', b'') in trt.calls and ('timing_set', False) in trt.calls
    timing = tmp_path / 'timing' / 't.timing'
    assert timing.read_bytes() == b'+timings' and ec.cache_entry_ok(timing)
    # the saved timing cache is loaded by the next build
    trt2 = make_fake_trt()
    _build(trt2, tmp_path, 'fp32')
    assert ('timing_in', b'+timings') in trt2.calls
    assert trt2.calls[-1] == ('build', [])  # fp32: no fp16, TF32 cleared
    # TensorRT 8: the explicit-batch flag
    trt8 = make_fake_trt(version='8.6.1')
    _build(trt8, tmp_path)
    assert ('network', 1) in trt8.calls


def test_build_reports_parser_and_builder_errors(tmp_path: Path) -> None:
    trt = make_fake_trt(parse_errors=(('Unsupported ONNX op', '/net/Resize_3', 'Resize'),))
    with pytest.raises(BackendError, match=r'parser rejected the graph: Unsupported ONNX op \(node /net/Resize_3, op'):
        _build(trt, tmp_path)
    with pytest.raises(BackendError, match='could not build a fp16 engine: no implementation for node /Resize'):
        _build(make_fake_trt(build_fails=True), tmp_path)
    with pytest.raises(BackendError, match='TensorRT 11 removed the fp16/int8 builder flags'):
        _build(make_fake_trt(version='11.4.1', weak_types=False), tmp_path)
    assert _build(make_fake_trt(version='11.4.1', weak_types=False), tmp_path, 'fp32').startswith(b'ENGINE')
    with pytest.raises(BackendError, match='needs a calibrator'):
        _build(make_fake_trt(), tmp_path, 'int8')


def test_entropy_calibrator_delegates_to_feeder_and_cache(tmp_path: Path) -> None:
    trt = make_fake_trt()
    frames = [np.full((16, 24, 3), i, np.uint8) for i in range(3)]
    feeder = calib.BatchFeeder(calib.CalibrationSource('3 frames', 'id', lambda: iter(frames)), (8, 12), 10)
    store = calib.CalibrationCache(tmp_path / 'c.calib')
    cal = calib.make_entropy_calibrator(trt, feeder, store, 'cpu')
    assert isinstance(cal, trt.IInt8EntropyCalibrator2) and cal.get_batch_size() == 1
    data = _build(trt, tmp_path, 'int8', cal)
    assert data.endswith(b'|FP16,INT8,TF32') and feeder.fed == 3
    assert store.read() == b'CALIB 3 frames' and int(cal.buffer[0, 0, 0, 0]) == 2
    # a second calibrator finds the cache and reads no frames
    reads = 0

    def read() -> Iterator[np.ndarray]:
        nonlocal reads
        reads += 1
        yield from frames

    feeder2 = calib.BatchFeeder(calib.CalibrationSource('3 frames', 'id', read), (8, 12), 10)
    _build(trt, tmp_path, 'int8', calib.make_entropy_calibrator(trt, feeder2, store, 'cpu'))
    assert reads == 0
    # a frame that cannot be read is kept for the builder, not raised through TensorRT
    broken = calib.BatchFeeder(calib.CalibrationSource('bad', 'id', lambda: iter([np.zeros(3)])), (8, 12), 10)
    cal3 = calib.make_entropy_calibrator(trt, broken, calib.CalibrationCache(tmp_path / 'd.calib'), 'cpu')
    assert cal3.get_batch(['frame']) is None and isinstance(broken.error, BackendError)
    with pytest.raises(BackendError, match='no IInt8EntropyCalibrator2'):
        calib.make_entropy_calibrator(make_fake_trt(weak_types=False), feeder, store, 'cpu')


# ------------------------------------------------------------------- the backend with stand-in TRT and runner


class FakeSource:
    """What the backend asks of a GraphSource: names, output names and a fused ONNX file per size."""

    def __init__(self, folder: Path, version: str = 'v1') -> None:
        self.folder = folder
        self.version = version
        self.model = SimpleNamespace(name='tiny')
        self.scorer = SimpleNamespace(name='entropy')
        self.output_names = ('labels', 'score')
        self.exports: list[tuple[int, int]] = []

    def onnx(self, frame_hw: tuple[int, int]) -> Path:
        self.exports.append(frame_hw)
        path = self.folder / f'graph-{frame_hw[1]}x{frame_hw[0]}-{self.version}.onnx'
        path.write_bytes(f'graph {frame_hw} {self.version}'.encode())
        return path


class FakeRunner:
    """EngineRunner's interface on the CPU: maps computed from the frame at the engine's own size."""

    def __init__(self, trt: Any, engine: Any, frame_hw: Any, names: Any, device: Any, what: str, reuse: bool) -> None:
        self.frame_hw = frame_hw
        self.engine = engine
        self.closed = False

    def __call__(self, frame: np.ndarray) -> dict[str, np.ndarray]:
        assert frame.shape[:2] == self.frame_hw
        return {'labels': (frame[..., 0] // 64).astype(np.uint8), 'score': frame[..., 1].astype(np.float32) / 255}

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_gpu(monkeypatch: pytest.MonkeyPatch, cache: Path) -> Any:
    trt = make_fake_trt()
    monkeypatch.setitem(sys.modules, 'tensorrt', trt)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(tb, 'gpu_identity', lambda device: ('Fake GPU', '8.7'))
    monkeypatch.setattr(tb, 'on_device', lambda device: contextlib.nullcontext())
    monkeypatch.setattr(tb, 'EngineRunner', FakeRunner)
    real = calib.make_entropy_calibrator
    monkeypatch.setattr(tb, 'make_entropy_calibrator', lambda t, f, c, d: real(t, f, c, 'cpu'))
    return trt


def _builds(trt: Any) -> int:
    return sum(1 for c in trt.calls if c[0] == 'build')


def test_backend_builds_caches_and_resizes(fake_gpu: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    statuses: list[str] = []
    src = FakeSource(tmp_path)
    backend = tb.TensorRTBackend(src, 'cuda:0', 'fp16', on_status=statuses.append)
    assert backend.name == 'tensorrt' and backend.device == 'cuda:0' and backend.precision == 'fp16'
    record = backend.prepare((64, 128))
    assert record.built and _builds(fake_gpu) == 1 and backend.status == 'ready'
    assert any(s.startswith('building engine 128x64 fp16 (first build takes minutes)') for s in statuses)
    assert record.key.gpu_name == 'Fake GPU' and record.key.compute_capability == '8.7'
    assert record.path.parent == ec.engine_dir() and backend.engines == {'128x64': record.path}
    frame = np.random.default_rng(1).integers(0, 256, (64, 128, 3), dtype=np.uint8)
    out = backend(frame)
    np.testing.assert_array_equal(out['labels'], frame[..., 0] // 64)
    # a second process (here: backend) finds the engine and builds nothing
    other = tb.TensorRTBackend(FakeSource(tmp_path), 'cuda:0', 'fp16')
    assert not other.prepare((64, 128)).built and _builds(fake_gpu) == 1
    # another size, built elsewhere (build-engine): found in the cache and used at its size
    assert other.prepare((96, 160)).built and _builds(fake_gpu) == 2
    big = np.random.default_rng(2).integers(0, 256, (96, 160, 3), dtype=np.uint8)
    np.testing.assert_array_equal(backend(big)['labels'], big[..., 0] // 64)
    assert _builds(fake_gpu) == 2 and backend.resized_frames == 0 and '160x96' in backend.engines
    # a size nobody built: host resize to the first engine, a warning, no build
    odd = np.random.default_rng(3).integers(0, 256, (50, 100, 3), dtype=np.uint8)
    with caplog.at_level(logging.WARNING):
        maps = backend(odd)
        backend(odd)
    assert maps['labels'].shape == (50, 100) and maps['score'].shape == (50, 100)
    assert _builds(fake_gpu) == 2 and backend.resized_frames == 2
    assert caplog.text.count('no engine for camera size 100x50') == 1
    backend.close()
    assert backend.status == 'closed'
    with pytest.raises(BackendError, match='after close'):
        backend(frame)


def test_backend_rebuilds_what_tensorrt_cannot_load(fake_gpu: Any, tmp_path: Path) -> None:
    backend = tb.TensorRTBackend(FakeSource(tmp_path), 'cuda:0', 'fp32')
    record = backend.prepare((64, 128))
    backend.close()
    # intact on disk (its sha256 matches) but not an engine TensorRT takes: discarded and rebuilt once
    ec.store_bytes(b'garbage', record.path)
    again = tb.TensorRTBackend(FakeSource(tmp_path), 'cuda:0', 'fp32').prepare((64, 128))
    assert again.built and again.path == record.path and record.path.read_bytes().startswith(b'ENGINE')
    # a changed graph is another key: built, the old engine untouched
    changed = tb.TensorRTBackend(FakeSource(tmp_path, version='v2'), 'cuda:0', 'fp32').prepare((64, 128))
    assert changed.built and changed.path != record.path and record.path.exists()


def _int8(tmp_path: Path, folder: str = 'frames', **options: Any) -> tb.TensorRTBackend:
    return tb.TensorRTBackend(
        FakeSource(tmp_path), 'cuda:0', 'int8', calibration=tmp_path / folder, calib_frames=3, **options
    )


def test_backend_int8_calibrates_once_from_a_folder(fake_gpu: Any, tmp_path: Path) -> None:
    _write_pngs(tmp_path / 'frames', 4)
    with pytest.raises(BackendError, match='precision int8 needs calibration frames'):
        tb.TensorRTBackend(FakeSource(tmp_path), 'cuda:0', 'int8')
    statuses: list[str] = []
    record = _int8(tmp_path, on_status=statuses.append).prepare((64, 128))
    assert record.built and record.key.precision == 'int8' and record.key.calibration_sha256
    assert any(s == 'int8 calibration: 3/3 frames' for s in statuses)
    calib_files = list(ec.engine_dir().glob('calib-128x64-*.calib'))
    assert len(calib_files) == 1 and calib_files[0].read_bytes() == b'CALIB 3 frames'
    assert record.key.calibration_sha256 == hashlib.sha256(b'CALIB 3 frames').hexdigest()
    # the next process reuses engine and calibration; a lost engine is rebuilt from the calibration cache
    assert not _int8(tmp_path).prepare((64, 128)).built
    ec.discard(record.path)
    statuses.clear()
    rebuilt = _int8(tmp_path, on_status=statuses.append).prepare((64, 128))
    assert rebuilt.built and rebuilt.key == record.key
    assert not any('calibration: 3/3' in s for s in statuses)
    # other frames: another calibration, another engine (the stand-in's table says how many frames it saw)
    _write_pngs(tmp_path / 'other', 2, hw=(20, 20))
    fresh = _int8(tmp_path, 'other').prepare((64, 128))
    assert fresh.built and fresh.key.calibration_sha256 == hashlib.sha256(b'CALIB 2 frames').hexdigest()


def test_backend_int8_reports_an_unreadable_calibration_frame(fake_gpu: Any, tmp_path: Path) -> None:
    (tmp_path / 'frames').mkdir()
    (tmp_path / 'frames' / 'broken.png').write_bytes(b'not a png')
    with pytest.raises(DatasetError, match='broken.png'):  # raised inside TensorRT's callback, re-raised after
        _int8(tmp_path).prepare((64, 128))
    assert not list(ec.engine_dir().glob('*.engine'))


# ------------------------------------------------------------------------------------------- build-engine CLI


def test_build_engine_without_tensorrt_exits_2_saying_why(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, 'tensorrt', None)
    assert main(['build-engine', '--model', str(tiny_model), '--size', '128x64', '--size', '256x128']) == 2
    err = capsys.readouterr().err
    assert 'anomaly-seg build-engine: error: no TensorRT engine can be built here: TensorRT is not installed' in err
    assert 'Traceback' not in err
    assert main(['build-engine', '--model', str(tiny_model), '--precision', 'int8']) == 2
    assert '--precision int8 needs --calibration FOLDER_OR_BAG' in capsys.readouterr().err
    assert main(['build-engine', '--model', str(tiny_model), '--calibration', str(tiny_model)]) == 2
    assert '--calibration is only used with --precision int8' in capsys.readouterr().err


def test_build_engine_help_and_defaults_match_the_backend(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from anomaly_seg_ros.cli import build_engine

    want = {
        'precision': defaults.TRT_PRECISION,
        'calib_frames': defaults.TRT_CALIB_FRAMES,
        'workspace_gb': defaults.TRT_WORKSPACE_GB,
    }
    with pytest.raises(SystemExit) as exit_info:
        main(['build-engine', '--help'])
    assert exit_info.value.code == 0
    text = ' '.join(capsys.readouterr().out.split())
    shown = [f'(default: {v})' for v in want.values()] + ['(default: cuda)', "(default: the model's"]
    for s in shown:
        assert s in text, s
    args = build_parser().parse_args(['build-engine'])
    backend = inspect.signature(tb.TensorRTBackend).parameters
    for name, value in want.items():
        assert getattr(args, name) == value, name  # what the command line uses when the flag is not given
        assert backend[name].default == value, name  # what the backend uses when the argument is not given
    assert build_engine.PRECISIONS == ec.PRECISIONS
    with pytest.raises(SystemExit):
        main(['build-engine', '--size', '10x10'])


def test_build_engine_prints_the_engines(
    fake_gpu: Any, tiny_model: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ['build-engine', '--model', str(tiny_model), '--size', '128x64', '--device', 'cuda:0']
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert 'engine 128x64: ' in out and '.engine (built in ' in out
    assert 'trt_version: 10.9.0.34' in out and 'gpu_name: Fake GPU' in out and 'precision: fp16' in out
    assert 'calibration_sha256' not in out
    assert main(argv) == 0
    assert '(found in the cache)' in capsys.readouterr().out


# --------------------------------------------------------------------------------------------- on a CUDA GPU


class _FakeEngine:
    """An engine's tensor API over fixed specs; its context 'runs' with torch ops on the given stream."""

    def __init__(self, hw: tuple[int, int]) -> None:
        h, w = hw
        self.specs = [
            ('frame', 'INPUT', (1, h, w, 3), 'UINT8'),
            ('score', 'OUTPUT', (1, h, w), 'FLOAT'),
            ('labels', 'OUTPUT', (1, h, w), 'UINT8'),
        ]
        self.num_io_tensors = len(self.specs)
        self.context: Any = None

    def get_tensor_name(self, i: int) -> str:
        return self.specs[i][0]

    def _spec(self, name: str) -> tuple[str, str, tuple[int, ...], str]:
        return next(s for s in self.specs if s[0] == name)

    def get_tensor_mode(self, name: str) -> str:
        return self._spec(name)[1]

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return self._spec(name)[2]

    def get_tensor_dtype(self, name: str) -> Any:
        return SimpleNamespace(name=self._spec(name)[3])

    def create_execution_context(self) -> Any:
        engine = self

        class Context:
            def __init__(self) -> None:
                self.addresses: dict[str, int] = {}
                self.tensors: dict[str, torch.Tensor] = {}

            def set_tensor_address(self, name: str, ptr: int) -> bool:
                self.addresses[name] = ptr
                return True

            def execute_async_v3(self, stream: int) -> bool:
                t = self.tensors
                with torch.cuda.stream(torch.cuda.ExternalStream(stream)):
                    t['labels'].copy_(t['frame'][..., 0]).div_(64, rounding_mode='floor')
                    t['score'].copy_(t['frame'][..., 1]).div_(255)
                return True

        engine.context = Context()
        return engine.context


@needs_cuda
def test_engine_runner_buffers_on_cuda() -> None:
    trt = make_fake_trt()
    hw = (64, 128)
    engine = _FakeEngine(hw)
    runner = tb.EngineRunner(trt, engine, hw, ('labels', 'score'), torch.device('cuda', 0), 'fake')
    ctx = engine.context
    ctx.tensors = {'frame': runner.device_in, **runner.device_out}
    assert ctx.addresses == {name: int(t.data_ptr()) for name, t in ctx.tensors.items()}
    assert runner.host_in.is_pinned() and all(t.is_pinned() for t in runner.host_out.values())
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (*hw, 3), dtype=np.uint8) for _ in range(4)]
    runner(frames[0])
    allocated = torch.cuda.memory_allocated()
    for frame in frames:
        out = runner(frame)
        np.testing.assert_array_equal(out['labels'], frame[..., 0] // 64)
        np.testing.assert_allclose(out['score'], frame[..., 1] / np.float32(255), rtol=1e-6)
    assert torch.cuda.memory_allocated() == allocated  # nothing allocated per frame on the device
    with pytest.raises(BackendError, match='does not match the pipeline graph'):
        tb.EngineRunner(trt, _FakeEngine(hw), (32, 64), ('labels', 'score'), torch.device('cuda', 0), 'fake')


# ---------------------------------------------------------------------------------- with TensorRT and a GPU


def _frames(hw: tuple[int, int], n: int = 2) -> list[np.ndarray]:
    rng = np.random.default_rng(hw[0] * 1000 + hw[1])
    small = [rng.integers(0, 256, (hw[0] // 4 + 1, hw[1] // 4 + 1, 3), dtype=np.uint8) for _ in range(n)]
    return [cv2.resize(s, (hw[1], hw[0]), interpolation=cv2.INTER_LINEAR) for s in small]  # camera-like texture


def _source(model: Path) -> Any:
    from anomaly_seg_ros.backends import GraphSource
    from anomaly_seg_ros.config import load_model_config
    from anomaly_seg_ros.scoring import build_scorer

    cfg = load_model_config(model)
    return GraphSource(cfg, build_scorer(cfg.scorer, cfg))


@needs_trt
@pytest.mark.parametrize('precision', ['fp32', 'fp16'])
def test_tensorrt_engine_matches_eager_torch(tiny_model: Path, precision: str, cache: Path) -> None:
    from anomaly_seg_ros.backends.torch_backend import TorchBackend

    reference = TorchBackend(_source(tiny_model))
    backend = tb.TensorRTBackend(_source(tiny_model), 'cuda', precision)
    for hw in ((64, 128), (150, 300)):
        backend.prepare(hw)
        for frame in _frames(hw):
            a, b = reference(frame), backend(frame)
            assert b['labels'].dtype == np.uint8 and b['score'].dtype == np.float32
            agree = float((a['labels'] == b['labels']).mean())
            diff = float(np.abs(a['score'].astype(np.float64) - b['score']).max())
            print(f'tensorrt {precision} {hw[1]}x{hw[0]}: labels agree {agree:.5f}, max score diff {diff:.2e}')
            if precision == 'fp32':
                assert agree >= 0.999 and diff <= 1e-3
            else:
                assert agree >= 0.99  # fp16 is reported, held only to a loose bound
    assert backend.resized_frames == 0
    backend.close()
    # a second backend loads the engines without building
    again = tb.TensorRTBackend(_source(tiny_model), 'cuda', precision)
    assert not again.prepare((64, 128)).built
    again.close()


@needs_trt
def test_tensorrt_int8_builds_with_folder_calibration(tiny_model: Path, cache: Path, tmp_path: Path) -> None:
    if 'int8' not in tb.capabilities().precisions:
        pytest.skip(f'TensorRT {tb.import_tensorrt().__version__} has no implicit int8 calibration')
    folder = tmp_path / 'frames'
    folder.mkdir()
    for i, frame in enumerate(_frames((64, 128), 8)):
        cv2.imwrite(str(folder / f'{i}.png'), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    backend = tb.TensorRTBackend(_source(tiny_model), 'cuda', 'int8', calibration=folder, calib_frames=8)
    record = backend.prepare((64, 128))
    assert record.built and record.key.calibration_sha256
    out = backend(_frames((64, 128))[0])
    assert out['labels'].shape == (64, 128) and np.isfinite(out['score']).all()
    backend.close()
