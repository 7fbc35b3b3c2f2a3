"""`anomaly-seg bench`: every available backend x scorer x camera size in one run, against plain eager PyTorch.

What is measured, and how:
- Configurations are (backend and precision, scorer, camera size). Backends that cannot run here are listed
  with the reason (`backends.backend_capabilities()`), scorers this model cannot run (ConfigError: a void
  scorer without a void channel, a missing tap or artefact) likewise; neither is run.
- Each configuration is warmed up first; its first call (exporting or loading the fused graph, building
  sessions, allocator growth) is reported apart as `build`, and whether it exported a new graph or found one
  in the cache.
- The timed frames are interleaved: frame i runs through every configuration, in an order rotated by one each
  frame, so machine noise (other processes, thermal and frequency changes) falls on all of them alike.
  Before each timed call the bench idles `gap_ms` (default 20 ms: a camera delivers a frame at most every
  33 ms at 30 Hz). Without a gap, torch's OpenMP workers keep spinning on the cores for a few ms after each
  torch call and slow whatever runs next in this process (measured: the ONNX Runtime call after a torch call
  ran ~5 ms slower at 2048x1024), a penalty a node running one backend never pays. `--gap-ms 0` shows it.
- The reference is eager torch in fp32 on the same device, same scorer, same frames: the code a user would
  otherwise write. Every row gets its end-to-end speed-up over it (p50 over p50) and its parity with it:
  labels agreeing (% of pixels) and the largest |score difference|, on the very frames that were timed.
- Stage timings: `input` (frame checks) and `graph` (the backend running the whole PipelineGraph, outputs on
  the host) for every backend. The torch backend's pre / net / post split comes from a separate profiled pass
  after the timed one (profiling synchronises between stages, which the end-to-end figures must not pay).
  A fused graph (ONNX Runtime, TensorRT) runs as one program and has no such split.

Figures, not assertions: speed targets are checked by reading this output, never by timed tests.
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from .backends import auto_order, backend_capabilities, resolve_precision
from .config import ModelConfig, load_model_config, resolve_model_dir
from .data.synthetic import SyntheticWorld, WorldConfig
from .defaults import BENCH_GAP_MS
from .errors import AnomalySegError, ConfigError
from .graph import check_scorer_needs
from .pipeline import STAGES, Pipeline, Result
from .scoring import SCORERS, build_scorer

__all__ = [
    'LABEL_AGREEMENT',
    'PROFILE_STAGES',
    'REFERENCE',
    'SCORE_ATOL',
    'BenchReport',
    'Case',
    'Skipped',
    'bench_frames',
    'compare',
    'data_tool_latency',
    'machine_info',
    'parity_problem',
    'print_report',
    'run_bench',
]

#: the reference every row is compared with: eager torch, fp32
REFERENCE = ('torch', 'fp32')
#: parity bounds (issue 9): labels agree on >= 99.9 % of pixels, scores within 1e-3 in fp32
LABEL_AGREEMENT = 0.999
SCORE_ATOL = 1e-3
PERCENTILES = (50, 95, 99)
#: the torch backend's stages in its profiled pass (TorchBackend.stage_ms)
PROFILE_STAGES = ('pre', 'net', 'post')
WARMUP_CALLS = 2


def bench_frames(size: tuple[int, int], n: int = 4, seed: int = 3000) -> list[np.ndarray]:
    """A few distinct road frames (with obstacles) at WIDTHxHEIGHT; timed loops cycle through them."""
    w, h = size
    world = SyntheticWorld(n, seed=seed, config=WorldConfig(height=h, width=w, anomaly_prob=1.0))
    return [world[i].image for i in range(n)]


def compare(ref: Result, other: Result) -> tuple[int, int, float]:
    """(pixels whose labels agree, pixels, max |score difference|) of one frame; nan when a score is not finite."""
    agree = int(np.count_nonzero(ref.labels == other.labels))
    diff = np.abs(ref.score.astype(np.float64) - other.score.astype(np.float64))
    return agree, int(ref.labels.size), float(diff.max()) if np.isfinite(diff).all() else math.nan


def parity_problem(agreement: float, max_diff: float, atol: float | None = None) -> str | None:
    """Why a result is outside the parity bounds (labels < 99.9 %, scores > atol, default 1e-3), or None."""
    atol = SCORE_ATOL if atol is None else atol
    problems = []
    if not agreement >= LABEL_AGREEMENT:
        problems.append(f'labels agree on {agreement * 100:.3f} % of pixels (< {LABEL_AGREEMENT * 100:g} %)')
    if not max_diff <= atol:  # also catches nan
        problems.append(f'scores differ by up to {max_diff:.3g} (> {atol:g})')
    return '; '.join(problems) or None


@dataclass(frozen=True)
class Skipped:
    """Something that was not run, and why (shown to the user and kept in the JSON)."""

    what: str  # 'backend tensorrt', 'scorer void', 'onnxruntime fp32 / entropy / 2048x1024'
    reason: str


@dataclass
class Case:
    """One configuration: its pipeline (shared by the sizes of one backend and scorer) and what was measured."""

    backend: str
    precision: str
    scorer: str
    size: tuple[int, int]  # (width, height)
    pipe: Pipeline
    build_ms: float = math.nan  # first call at this size: export or cache load, session/engine, first frame
    exported: bool = False  # whether that first call wrote a new file into the cache
    times: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in (*STAGES, 'total')})
    stages: dict[str, list[float]] = field(default_factory=dict)  # torch profiled pass: pre, net, post
    agree_px: int = 0
    total_px: int = 0
    max_diff: float = 0.0
    speedup: float = math.nan  # reference total p50 / this total p50

    @property
    def variant(self) -> str:
        return f'{self.backend} {self.precision}'

    @property
    def is_reference(self) -> bool:
        return (self.backend, self.precision) == REFERENCE

    @property
    def size_text(self) -> str:
        return f'{self.size[0]}x{self.size[1]}'

    @property
    def agreement(self) -> float:
        return self.agree_px / self.total_px if self.total_px else math.nan

    def p(self, stage: str, q: float) -> float:
        values = self.times.get(stage) or self.stages.get(stage)
        return float(np.percentile(values, q)) if values else math.nan

    def to_json(self) -> dict[str, Any]:
        def pct(values: list[float]) -> dict[str, float]:
            return {f'p{q}': float(np.percentile(values, q)) for q in PERCENTILES}

        return {
            'backend': self.backend,
            'precision': self.precision,
            'scorer': self.scorer,
            'size': self.size_text,
            'reference': self.is_reference,
            'build_ms': _finite(self.build_ms),
            'exported': self.exported,
            'timings_ms': {k: pct(v) for k, v in self.times.items() if v},
            'profiled_stages_ms': {k: pct(v) for k, v in self.stages.items() if v},
            'speedup_vs_reference': _finite(self.speedup),
            'label_agreement': _finite(self.agreement),
            'max_score_diff': _finite(self.max_diff),
            'parity_ok': parity_problem(self.agreement, self.max_diff) is None,
        }


@dataclass
class BenchReport:
    model: ModelConfig
    device: str
    frames: int
    sizes: tuple[tuple[int, int], ...]
    machine: dict[str, Any]
    cases: list[Case]
    skipped: list[Skipped]
    images: dict[tuple[int, int], list[np.ndarray]]
    data_tools: dict[str, np.ndarray] = field(default_factory=dict)
    gap_ms: float = 0.0

    @property
    def scorers(self) -> list[str]:
        return list(dict.fromkeys(c.scorer for c in self.cases))

    def totals(self, backend: str, scorer: str) -> dict[tuple[int, int], np.ndarray]:
        """End-to-end ms per size of one measured backend (its default precision) and scorer."""
        return {
            c.size: np.asarray(c.times['total'])
            for c in self.cases
            if c.backend == backend
            and c.scorer == scorer
            and c.precision == resolve_precision(backend, self.device, 'auto')
        }

    def to_json(self) -> dict[str, Any]:
        spec = self.model.input
        return {
            'model': {
                'name': self.model.name,
                'directory': str(self.model.directory),
                'architecture': self.model.architecture,
                'input': f'{spec.width}x{spec.height}',
            },
            'device': self.device,
            'frames': self.frames,
            'gap_ms': self.gap_ms,
            'sizes': [f'{w}x{h}' for w, h in self.sizes],
            'reference': ' '.join(REFERENCE),
            'machine': self.machine,
            'results': [c.to_json() for c in self.cases],
            'skipped': [{'what': s.what, 'reason': s.reason} for s in self.skipped],
            'data_tools_ms': {
                k: {f'p{q}': float(np.percentile(v, q)) for q in PERCENTILES} for k, v in self.data_tools.items()
            },
        }


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def machine_info(device: str) -> dict[str, Any]:
    """Cores, CPU model, library versions and threads: what the figures depend on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next((line.split(':', 1)[1].strip() for line in f if line.startswith('model name')), cpu)
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    info: dict[str, Any] = {
        'cpu': cpu,
        'cores': os.cpu_count(),
        'cores_usable': usable,
        'os': f'{platform.system()} {platform.release()} {platform.machine()}',
        'python': platform.python_version(),
        'torch': torch.__version__,
        'torch_threads': torch.get_num_threads(),
    }
    try:
        import onnxruntime

        from .backends.onnxruntime_backend import default_threads

        info['onnxruntime'] = onnxruntime.__version__
        info['onnxruntime_threads'] = default_threads()
    except ImportError:
        info['onnxruntime'] = None
    if device.startswith('cuda') and torch.cuda.is_available():
        info['gpu'] = torch.cuda.get_device_name(torch.device(device))
    return info


def machine_line(info: dict[str, Any], device: str) -> str:
    ort = (
        f', onnxruntime {info["onnxruntime"]} ({info["onnxruntime_threads"]} threads)'
        if info.get('onnxruntime')
        else ''
    )
    gpu = f', GPU {info["gpu"]}' if info.get('gpu') else ''
    return (
        f'machine: {info["cpu"]}, {info["cores_usable"]} of {info["cores"]} cores usable, {info["os"]}, '
        f'python {info["python"]}, torch {info["torch"]} ({info["torch_threads"]} threads){ort}, device {device}{gpu}'
    )


def _names(request: str, known: Sequence[str], what: str) -> list[str]:
    names = list(known) if request == 'all' else [n.strip() for n in request.split(',') if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise ConfigError(
            f'bench: unknown {what} {", ".join(unknown) or repr(request)}; available: all, {", ".join(known)}'
        )
    return list(dict.fromkeys(names))


def select_variants(request: str, device: str) -> tuple[list[tuple[str, str]], list[Skipped]]:
    """(backend, precision) pairs to run, the reference first, and the backends that cannot run here."""
    caps = backend_capabilities()
    names = _names(request, list(caps), 'backend')
    kind = 'cuda' if device.startswith('cuda') else device
    variants: list[tuple[str, str]] = []
    skipped: list[Skipped] = []
    for name in dict.fromkeys([REFERENCE[0], *names]):
        c = caps[name]
        if c.available is not None:
            skipped.append(Skipped(f'backend {name}', c.available))
        elif kind not in c.devices:
            skipped.append(
                Skipped(f'backend {name}', f'cannot run on {device} here (devices: {", ".join(c.devices) or "none"})')
            )
        else:
            if name == REFERENCE[0]:
                variants.append(REFERENCE)
            precision = resolve_precision(name, device, 'auto')
            if (name, precision) not in variants:
                variants.append((name, precision))
    if not variants or variants[0] != REFERENCE:
        reason = next((s.reason for s in skipped if s.what == f'backend {REFERENCE[0]}'), 'not available')
        raise ConfigError(f'bench: the reference, eager torch on {device}, cannot run: {reason}')
    return variants, skipped


def select_scorers(request: str, model: ModelConfig) -> tuple[list[str], list[Skipped]]:
    """Scorers to run ('' = the model's own, 'all' = every registered one) and those this model cannot run."""
    names = [model.scorer] if not request else _names(request, sorted(SCORERS), 'scorer')
    ok: list[str] = []
    skipped: list[Skipped] = []
    for name in names:
        try:
            check_scorer_needs(model, build_scorer(name, model))
        except ConfigError as e:
            skipped.append(Skipped(f'scorer {name}', str(e)))
            continue
        ok.append(name)
    if not ok:
        raise ConfigError(
            f'bench: model {model.name!r} can run none of the scorers asked for: '
            + '; '.join(s.reason for s in skipped)
        )
    return ok, skipped


def _cache_files() -> set[Path]:
    from .backends.export import cache_dir

    root = cache_dir()
    return {p for p in root.rglob('*') if p.is_file()} if root.is_dir() else set()


def _warm_up(case: Case, frames: list[np.ndarray]) -> None:
    """First call (timed apart as build) and a few more, so the timed frames see a steady state."""
    before = _cache_files()
    t0 = time.perf_counter()
    prepare = getattr(case.pipe.backend, 'prepare', None)
    if prepare is not None:
        prepare((case.size[1], case.size[0]))
    case.pipe(frames[0])
    case.build_ms = (time.perf_counter() - t0) * 1e3
    case.exported = bool(_cache_files() - before)
    for i in range(WARMUP_CALLS):
        case.pipe(frames[(i + 1) % len(frames)])


def _timed_rounds(
    cases: list[Case], images: dict[tuple[int, int], list[np.ndarray]], frames: int, gap_ms: float = 0.0
) -> None:
    """Frame i through every case, starting one further along each frame; parity against the reference on the
    same frame. Results are compared as soon as both sides exist, so at most one frame per case is held."""
    for i in tqdm(range(frames), desc='bench', leave=False):
        k = i % len(cases)
        refs: dict[tuple[str, tuple[int, int]], Result] = {}
        pending: list[tuple[Case, Result]] = []
        for case in cases[k:] + cases[:k]:
            sized = images[case.size]
            if gap_ms > 0:
                time.sleep(gap_ms / 1e3)
            result = case.pipe(sized[i % len(sized)])
            for stage, values in case.times.items():
                values.append(result.timings[stage])
            if case.is_reference:
                refs[(case.scorer, case.size)] = result
            else:
                pending.append((case, result))
            for other, res in [p for p in pending if (p[0].scorer, p[0].size) in refs]:
                agree, total, diff = compare(refs[(other.scorer, other.size)], res)
                other.agree_px += agree
                other.total_px += total
                other.max_diff = (
                    math.nan if math.isnan(diff) or math.isnan(other.max_diff) else max(other.max_diff, diff)
                )
                pending.remove((other, res))
    for case in cases:
        if case.is_reference:
            case.agree_px = case.total_px = 1
        ref = next(c for c in cases if c.is_reference and c.scorer == case.scorer and c.size == case.size)
        case.speedup = ref.p('total', 50) / case.p('total', 50)


def _profiled_pass(cases: list[Case], images: dict[tuple[int, int], list[np.ndarray]], frames: int) -> None:
    """The torch backend's pre / net / post per frame, interleaved like the timed pass."""
    profiled = [c for c in cases if hasattr(c.pipe.backend, 'profile')]
    for c in profiled:
        c.stages = {k: [] for k in PROFILE_STAGES}
    for i in tqdm(range(frames if profiled else 0), desc='profiled pass', leave=False):
        k = i % len(profiled)
        for case in profiled[k:] + profiled[:k]:
            backend: Any = case.pipe.backend
            backend.profile = True
            try:
                sized = images[case.size]
                case.pipe(sized[i % len(sized)])
            finally:
                backend.profile = False
            for stage in PROFILE_STAGES:
                if stage in backend.stage_ms:  # a captured CUDA graph replays without stage marks
                    case.stages[stage].append(float(backend.stage_ms[stage]))


def run_bench(
    model: str | Path,
    backends: str,
    scorers: str,
    sizes: Sequence[tuple[int, int]],
    frames: int,
    device: str = 'cpu',
    data_tools: bool = True,
    gap_ms: float = BENCH_GAP_MS,
) -> BenchReport:
    """Build, warm up and time every configuration; the report holds the figures, `print_report` the tables."""
    cfg = load_model_config(resolve_model_dir(str(model)))
    sizes = tuple(dict.fromkeys(sizes))
    variants, skipped = select_variants(backends, device)
    scorer_names, skipped_scorers = select_scorers(scorers, cfg)
    skipped += skipped_scorers
    images = {size: bench_frames(size, min(frames, 4)) for size in sizes}
    cases: list[Case] = []
    for backend, precision in variants:
        for scorer in scorer_names:
            what = f'{backend} {precision} / {scorer}'
            try:
                pipe = Pipeline.from_model(cfg.directory, scorer, backend, device, precision)
            except AnomalySegError as e:
                if (backend, precision) == REFERENCE:
                    raise
                skipped.append(Skipped(what, str(e)))
                continue
            for size in sizes:
                case = Case(backend, precision, scorer, size, pipe)
                try:
                    _warm_up(case, images[size])
                except AnomalySegError as e:
                    if case.is_reference:
                        raise
                    skipped.append(Skipped(f'{what} / {case.size_text}', str(e)))
                    continue
                cases.append(case)
    _timed_rounds(cases, images, frames, gap_ms)
    _profiled_pass(cases, images, frames)
    report = BenchReport(cfg, device, frames, tuple(sizes), machine_info(device), cases, skipped, images)
    report.gap_ms = gap_ms
    if data_tools:
        report.data_tools = data_tool_latency(frames)
    return report


def _ms(x: float) -> str:
    return f'{x:.1f}' if math.isfinite(x) else '—'


def _pcts(case: Case, stage: str) -> str:
    if not (case.times.get(stage) or case.stages.get(stage)):
        return '—'
    return ' / '.join(_ms(case.p(stage, q)) for q in PERCENTILES)


def _ordered(cases: list[Case]) -> list[Case]:
    """By camera size, then scorer, then backend, each in the order it was asked for (the reference first)."""
    sizes = list(dict.fromkeys(c.size for c in cases))
    scorers = list(dict.fromkeys(c.scorer for c in cases))
    variants = list(dict.fromkeys(c.variant for c in cases))
    return sorted(cases, key=lambda c: (sizes.index(c.size), scorers.index(c.scorer), variants.index(c.variant)))


def end_to_end_table(cases: list[Case]) -> list[str]:
    rows = [
        '| backend | scorer | frame | total p50 ms | p95 | p99 | speed-up vs eager torch | labels agree '
        '| max \\|Δscore\\| | build s |',
        '|---|---|---|---:|---:|---:|---:|---:|---:|---:|',
    ]
    for c in _ordered(cases):
        agree = 'reference' if c.is_reference else f'{c.agreement * 100:.3f} %'
        diff = '—' if c.is_reference else f'{c.max_diff:.1e}'
        build = f'{c.build_ms / 1e3:.2f}' + (' (export)' if c.exported else '')
        rows.append(
            f'| {c.variant} | {c.scorer} | {c.size_text} | {_ms(c.p("total", 50))} | {_ms(c.p("total", 95))} | '
            f'{_ms(c.p("total", 99))} | {c.speedup:.2f}x | {agree} | {diff} | {build} |'
        )
    return rows


def stage_table(cases: list[Case]) -> list[str]:
    stages = (*STAGES, *PROFILE_STAGES)
    head = ' | '.join(f'{s} ms' for s in stages)
    rows = [f'| backend | scorer | frame | {head} |', '|---|---|---|' + '---:|' * len(stages)]
    for c in _ordered(cases):
        rows.append(f'| {c.variant} | {c.scorer} | {c.size_text} | ' + ' | '.join(_pcts(c, s) for s in stages) + ' |')
    return rows


def print_report(report: BenchReport) -> None:
    spec = report.model.input
    n = len(report.cases)
    print(
        f'model {report.model.name!r} ({report.model.architecture}, input {spec.width}x{spec.height}); '
        f'{report.frames} timed frames per configuration, interleaved over {n} configurations'
    )
    print(machine_line(report.machine, report.device))
    print(f'timed calls interleaved, {report.gap_ms:g} ms idle before each (--gap-ms)')
    for s in report.skipped:
        print(f'not run: {s.what}: {s.reason}')
    print()
    print(
        f'End to end (ms per frame, p50 over the {report.frames} timed frames; reference: eager torch fp32 on '
        f'{report.device}, same scorer and frames):'
    )
    print()
    print('\n'.join(end_to_end_table(report.cases)))
    print()
    print('Per stage (ms, p50 / p95 / p99; pre / net / post from a separate profiled pass of the torch backend):')
    print()
    print('\n'.join(stage_table(report.cases)))
    print()
    for c in report.cases:
        problem = None if c.is_reference else parity_problem(c.agreement, c.max_diff)
        if problem:
            print(f'parity outside the bounds: {c.variant} / {c.scorer} / {c.size_text}: {problem}')
    for c in report.cases:
        if c.backend == 'onnxruntime' and c.size == (2048, 1024):
            verdict = 'met' if c.speedup >= 1.8 and c.agree_px == c.total_px else 'not met'
            print(
                f'goal (issue 9: fused onnxruntime >= 1.8x eager torch at 2048x1024, identical labels), {c.scorer}: '
                f'{c.speedup:.2f}x, labels agree on {c.agreement * 100:.3f} %: {verdict}'
            )
    if report.data_tools:
        print()
        print(f'Data tools, 1024x512, {report.frames} frames (ms):')
        print()
        print('| tool | p50 | p95 | p99 |')
        print('|---|---:|---:|---:|')
        for k, v in report.data_tools.items():
            print(f'| {k} | ' + ' | '.join(_ms(float(np.percentile(v, q))) for q in PERCENTILES) + ' |')


def node_backend(report: BenchReport) -> str:
    """The backend `auto` would give the node on this device among those measured (what the node overhead uses)."""
    measured = {c.backend for c in report.cases}
    return next(b for b in (*auto_order(report.device), REFERENCE[0]) if b in measured)


def _disc_object(rgb: tuple[int, int, int], r: int) -> np.ndarray:
    """An RGBA disc with a soft edge: a stand-in object for timing the blend step."""
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    obj = np.zeros((2 * r + 1, 2 * r + 1, 4), np.uint8)
    obj[..., :3] = rgb
    obj[..., 3] = (np.clip(r - np.hypot(yy, xx), 0.0, 1.0) * 255).astype(np.uint8)
    return obj


def data_tool_latency(runs: int, size: tuple[int, int] = (1024, 512)) -> dict[str, np.ndarray]:
    """ms per frame of the data tools at WIDTHxHEIGHT: rendering a synthetic frame, Fishyscapes-style blending."""
    from .data.blend import BlendConfig, blend_sample
    from .data.sample import Sample

    w, h = size
    world = SyntheticWorld(runs, seed=3000, config=WorldConfig(height=h, width=w))
    objects = [_disc_object((230, 20, 20), 30), _disc_object((20, 230, 40), 45)]
    rng = np.random.default_rng(0)
    rows: dict[str, list[float]] = {'synthetic frame': [], 'blend_sample': []}
    for i in tqdm(range(runs), desc='data tools', leave=False):
        t0 = time.perf_counter()
        frame = world[i]
        t1 = time.perf_counter()
        blend_sample(Sample(frame.image), objects, [], BlendConfig(), rng)
        t2 = time.perf_counter()
        rows['synthetic frame'].append((t1 - t0) * 1e3)
        rows['blend_sample'].append((t2 - t1) * 1e3)
    return {k: np.asarray(v) for k, v in rows.items()}
