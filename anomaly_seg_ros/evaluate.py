"""`anomaly-seg evaluate`: choose the source (bag, dataset folder or synthetic world) and the mode
(offline Pipeline or live node), run it, write report.json + report.html, and say what a person reads first.

Every frame that was not evaluated is listed in the report: ``skipped`` (not read: a corrupt file, a bag
message that cannot be decoded; each ``{index, name, reason}``, bag entries also name the ``topic``) and
``failed`` (read, but the Pipeline raised or gave non-finite scores); a bag's other problems (stamps,
unmatched ground truth) are in ``bag_warnings``. A run that evaluates no frame at all
still writes its report, then raises :class:`NothingToEvaluateError` with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .bag import BagReader, bag_info
from .config import NodeConfig, default_params_file, load_node_config
from .data.readers import open_dataset
from .defaults import (
    EVAL_MIN_GT_SIZE,
    EVAL_MIN_PRED_SIZE,
    EVAL_MODE,
    EVAL_WORST_K,
    GT_ANOMALY_TOPIC,
    GT_LABELS_TOPIC,
    LIVE_RATE_SCALE,
    SYNTHETIC_EVAL_COUNT,
    SYNTHETIC_EVAL_SEED,
    SYNTHETIC_FRAME_SIZE,
)
from .errors import AnomalySegError, ConfigError, DatasetError
from .eval.accumulate import DEFAULT_COMPONENT_THRESHOLDS, SMIYC_TRACK_CHOICES, EvalSettings, track_sizes
from .eval.offline import (
    EvalFrame,
    EvalRun,
    describe_pipeline,
    evaluate_frames,
    finish_run,
    frame_stamp,
    samples_as_frames,
)
from .eval.report import to_jsonable, write_html_report, write_json_report
from .metrics.pixel import DEFAULT_BINS
from .pipeline import Pipeline

__all__ = ['EvaluateOptions', 'LiveRunner', 'NothingToEvaluateError', 'headline', 'run_evaluate']


class NothingToEvaluateError(AnomalySegError):
    """The run evaluated no frame (empty bag, every frame skipped or failed); ``run`` holds its report,
    which has been written when ``--out`` was given. The CLI prints the headline, then exits 2."""

    def __init__(self, reason: str, run: EvalRun, out: Path | None = None) -> None:
        written = f' (the report is in {out})' if out is not None else ''
        super().__init__(f'nothing to evaluate: {reason}{written}')
        self.reason = reason
        self.run = run


@dataclass
class EvaluateOptions:
    # source: exactly one of bag / dataset
    bag: Path | None = None
    dataset: str | None = None  # 'synthetic' or a reader format
    root: Path | None = None
    split: str | None = None
    count: int = SYNTHETIC_EVAL_COUNT  # synthetic frames
    seed: int = SYNTHETIC_EVAL_SEED  # synthetic split seed
    size: tuple[int, int] = SYNTHETIC_FRAME_SIZE  # synthetic frame size
    limit: int | None = None
    image_topic: str | None = None
    # None: the default topic (GT_ANOMALY_TOPIC / GT_LABELS_TOPIC) when the bag has it; a name must exist
    anomaly_topic: str | None = None
    labels_topic: str | None = None
    strict: bool = False
    # what runs
    mode: str = EVAL_MODE  # 'offline' | 'live'
    params: Path | None = None
    overrides: dict[str, Any] = field(default_factory=dict)  # model / scorer / backend / device
    rate_scale: float = LIVE_RATE_SCALE  # live: play at recorded rate x this
    late_ms: float | None = None  # live: an answer later than this is 'late' (default: 2 frame periods)
    # metrics
    exact: bool = False
    bins: int = DEFAULT_BINS
    threshold: float | None = None  # fixed threshold: components.fixed_threshold and Chan (never the SMIYC headline)
    track: str = 'anomaly'  # SMIYC size presets: anomaly (500 / 100 px), obstacle (50 / 10), none (the sizes below)
    min_gt_size: int = EVAL_MIN_GT_SIZE  # track none only
    min_pred_size: int = EVAL_MIN_PRED_SIZE  # track none only
    component_thresholds: int = DEFAULT_COMPONENT_THRESHOLDS  # SMIYC: candidates of the one-pass threshold sweep
    worst_k: int = EVAL_WORST_K
    out: Path | None = None
    progress: bool = True


def node_config(opts: EvaluateOptions) -> NodeConfig:
    params = opts.params or default_params_file()
    base = load_node_config(params)
    values = {**base.__dict__, **{k: v for k, v in opts.overrides.items() if v not in (None, '')}}
    return NodeConfig.from_dict(values, f'{params} with command-line overrides')


def _ground_truth_topics(opts: EvaluateOptions, topics: dict[str, Any]) -> tuple[str | None, str | None]:
    """The GT topics to read: a topic named by the user must be in the bag (a typo must not silently drop the
    ground truth); an unnamed one is the default topic when the bag has it."""
    listing = f'topics: {", ".join(topics)}'
    named = {'--anomaly-topic': opts.anomaly_topic, '--labels-topic': opts.labels_topic}
    missing = {flag: t for flag, t in named.items() if t is not None and t not in topics}
    if len(missing) == 2:
        raise ConfigError(
            f'{opts.bag}: neither {opts.anomaly_topic} nor {opts.labels_topic} is in the bag; {listing} '
            '(name them with --anomaly-topic/--labels-topic)'
        )
    for flag, topic in missing.items():
        raise ConfigError(f'{opts.bag}: {flag} {topic} is not in the bag; {listing}')
    anomaly = opts.anomaly_topic or (GT_ANOMALY_TOPIC if GT_ANOMALY_TOPIC in topics else None)
    labels = opts.labels_topic or (GT_LABELS_TOPIC if GT_LABELS_TOPIC in topics else None)
    if anomaly is None and labels is None:
        raise ConfigError(
            f'{opts.bag}: neither {GT_ANOMALY_TOPIC} nor {GT_LABELS_TOPIC} is in the bag; {listing} '
            '(name them with --anomaly-topic/--labels-topic)'
        )
    return anomaly, labels


def _source(opts: EvaluateOptions) -> tuple[Any, int | None, dict[str, Any], BagReader | None]:
    """(frame iterable, total if known, description for the report, bag reader if any)."""
    if (opts.bag is None) == (opts.dataset is None):
        raise ConfigError('evaluate: give exactly one of --bag or --dataset')
    if opts.bag is not None:
        info = bag_info(opts.bag)
        anomaly, labels = _ground_truth_topics(opts, info['topics'])
        reader = BagReader(
            opts.bag, image_topic=opts.image_topic, anomaly_topic=anomaly, labels_topic=labels, strict=opts.strict
        )
        frames = (EvalFrame(f.index, f.sample.name, f.stamp_ns, f.sample) for f in reader)
        rep = reader.report
        desc = {
            'source': 'bag',
            'bag': str(opts.bag),
            'storage': info['storage'],
            'image_topic': rep.image_topic,
            'anomaly_topic': rep.anomaly_topic,
            'labels_topic': rep.labels_topic,
            'frames_in_bag': info['topics'].get(rep.image_topic, {}).get('count'),
        }
        total = desc['frames_in_bag']
        return _limited(frames, opts.limit), min(total, opts.limit or total) if total else None, desc, reader
    if opts.dataset == 'synthetic':
        from .data.synthetic import SyntheticWorld, WorldConfig

        w, h = opts.size
        world = SyntheticWorld(opts.count, seed=opts.seed, config=WorldConfig(height=h, width=w))
        desc = {
            'source': 'synthetic',
            'split_seed': opts.seed,
            'frames_requested': opts.count,
            'frame_size': f'{w}x{h}',
            'world': {k: v for k, v in world.config.__dict__.items()},
        }
        return _limited(samples_as_frames(world), opts.limit), min(opts.count, opts.limit or opts.count), desc, None
    if opts.root is None:
        raise ConfigError(f'evaluate: --dataset {opts.dataset} needs --root')
    kw = {'split': opts.split} if opts.split else {}
    reader_ds = open_dataset(opts.dataset, opts.root, **kw)  # type: ignore[arg-type]
    desc = {
        'source': 'dataset',
        'format': opts.dataset,
        'root': str(opts.root),
        'split': opts.split,
        'frames_in_dataset': len(reader_ds),
    }
    n = len(reader_ds) if opts.limit is None else min(len(reader_ds), opts.limit)
    return _dataset_frames(reader_ds, n), n, desc, None


def _limited(frames: Any, limit: int | None) -> Any:
    for i, f in enumerate(frames):
        if limit is not None and i >= limit:
            return
        yield f


def _dataset_frames(reader: Any, n: int) -> Any:
    """Samples with stamps 0.1 s apart; a file that fails to read is reported and skipped, not fatal."""
    for i in range(n):
        stamp = frame_stamp(i)
        try:
            sample = reader[i]
        except DatasetError as e:
            yield EvalFrame(i, reader.names[i], stamp, None, str(e))
            continue
        yield EvalFrame(i, sample.name, stamp, sample)


#: what runs a live evaluation: ``(node config, options, frames, total, settings kwargs) -> (accumulator,
#: wall seconds, the 'evaluated' block)``; the ROS layer provides it (``ros.live_eval.run_live``)
LiveRunner = Callable[[NodeConfig, EvaluateOptions, Iterable[EvalFrame], int | None, dict[str, Any]], Any]


def run_evaluate(opts: EvaluateOptions, live_runner: LiveRunner | None = None) -> EvalRun:
    """Evaluate as `opts` says. Live mode needs the node, which lives in the ROS layer above this module: it
    comes in as ``live_runner`` (``anomaly_seg_ros.ros.live_eval.run_live`` passes it; so does the CLI)."""
    settings_kw = dict(
        mode='exact' if opts.exact else 'binned',
        bins=opts.bins,
        threshold=opts.threshold,
        track=opts.track,
        min_gt_size=opts.min_gt_size,
        min_pred_size=opts.min_pred_size,
        component_thresholds=_component_thresholds(opts.component_thresholds),
        worst_k=opts.worst_k,
    )
    _check_track(opts)  # before any frame is read: a bad option must not cost a run
    cfg = node_config(opts)
    frames, total, desc, bag_reader = _source(opts)
    if opts.mode == 'offline':
        pipe = Pipeline.from_model(cfg.model, cfg.scorer, cfg.backend, cfg.device)
        settings = EvalSettings(score_range=pipe.score_range, **settings_kw)  # type: ignore[arg-type]
        acc, wall = evaluate_frames(pipe, frames, settings, total=total, progress=opts.progress)
        evaluated = {**desc, 'mode': 'offline', **describe_pipeline(pipe, cfg.backend, cfg.device)}
    elif opts.mode == 'live':
        if live_runner is None:
            raise ConfigError(
                'evaluate: --mode live runs the ROS node; call anomaly_seg_ros.ros.live_eval.run_live(opts) '
                '(or `anomaly-seg evaluate --mode live`) instead of run_evaluate'
            )
        acc, wall, evaluated_live = live_runner(cfg, opts, frames, total, settings_kw)
        evaluated = {**desc, 'mode': 'live', **evaluated_live}
    else:
        raise ConfigError(f'evaluate: --mode must be offline or live, got {opts.mode!r}')
    if bag_reader is not None:
        evaluated['bag_read'] = _bag_read(bag_reader)
    run = finish_run(acc, evaluated, wall)
    if bag_reader is not None:
        run.report['skipped'] += _bag_skipped(bag_reader)
        run.report['bag_warnings'] = _bag_warnings(bag_reader)
    if opts.out is not None:
        opts.out.mkdir(parents=True, exist_ok=True)
        write_json_report(run.report, opts.out / 'report.json')
        write_html_report(run.report, run.curves, run.frames, run.worst, opts.out / 'report.html')
    if not run.report['evaluated']['frames_evaluated']:
        raise NothingToEvaluateError(nothing_evaluated_reason(run.report, total), run, opts.out)
    return run


def _check_track(opts: EvaluateOptions) -> None:
    if opts.track not in SMIYC_TRACK_CHOICES:
        raise ConfigError(f'evaluate: --track must be one of {", ".join(SMIYC_TRACK_CHOICES)}, got {opts.track!r}')
    for flag, value in (('--min-pred-size', opts.min_pred_size), ('--min-gt-size', opts.min_gt_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f'evaluate: {flag} must be a non-negative integer, got {value!r}')
    try:
        track_sizes(opts.track, opts.min_pred_size, opts.min_gt_size)
    except ValueError:
        raise ConfigError(
            f'evaluate: --track {opts.track} sets the SMIYC size filters itself; --min-pred-size/--min-gt-size '
            'need --track none'
        ) from None


def _component_thresholds(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f'evaluate: --component-thresholds must be a positive integer, got {n!r}')
    return n


def _bag_read(reader: BagReader) -> dict[str, Any]:
    rep = reader.report
    return {
        'frames': rep.frames,
        'messages': rep.messages,
        'finished': rep.finished,
        'failure': str(rep.failure) if rep.failure is not None else None,
    }


def _bag_warnings(reader: BagReader) -> list[dict[str, Any]]:
    """Bag problems that lost no frame: suspicious stamps, ground truth no image message matched."""
    rep = reader.report
    lost = {*rep.skipped, *([rep.failure] if rep.failure is not None else [])}
    return [{'topic': i.topic, 'index': i.index, 'reason': i.reason} for i in rep.issues if i not in lost]


def _bag_skipped(reader: BagReader) -> list[dict[str, Any]]:
    """The bag messages whose frame was not yielded, and where reading broke off, as report entries."""
    rep = reader.report
    issues = [*rep.skipped, *([rep.failure] if rep.failure is not None else [])]
    stem = reader.path.stem
    return [
        {
            'index': i.index,
            'name': f'{stem}-{i.index:06d}' if i.topic == rep.image_topic and i.index is not None else str(i),
            'reason': i.reason,
            'topic': i.topic,
        }
        for i in issues
    ]


def nothing_evaluated_reason(report: dict[str, Any], total: int | None) -> str:
    """Why a run evaluated no frame, e.g. '0 of 4 frames evaluated: 4 skipped (first: f0.png: ...)'."""
    ev = report.get('evaluated', {})
    counts: dict[str, int] = dict(report.get('latency', {}).get('frames_by_status', {}))
    skipped, failed = report.get('skipped', []), report.get('failed', [])
    if ev.get('source') == 'bag' and not skipped and not failed and not sum(counts.values()):
        return f'the bag holds no frames on {ev.get("image_topic")}'
    n = max(total or 0, sum(counts.values()))
    if not n and not skipped:
        return f'the {ev.get("source", "source")} holds no frames'
    parts = []
    for kind, entries in (('skipped', skipped), ('failed', failed)):
        if entries:
            first = entries[0]
            where = first['name'] if 'topic' not in first else f'{first["topic"]} message {first["index"]}'
            parts.append(f'{len(entries)} {kind} (first: {where}: {first["reason"]})')
    parts += [f'{c} {k}' for k, c in counts.items() if k not in ('ok', 'late', 'skipped', 'failed') and c]
    return f'0 of {n} frames evaluated: ' + ', '.join(parts or ['no frame was read'])


def headline(report: dict[str, Any]) -> dict[str, Any]:
    """What a person reads first: what was evaluated and the main numbers (all of them are in report.json).

    JSON-safe: NaN and inf are None (null), so ``json.dumps(headline(r), allow_nan=False)`` always works.
    """
    px = report.get('pixel', {})
    seg = report.get('segmentation', {})
    comp = report.get('components', {})
    lat = report.get('latency', {})
    out = {
        'evaluated': report['evaluated'],
        'AP': px.get('ap'),
        'FPR95': px.get('fpr95'),
        'AUROC': px.get('auroc'),
        'anomaly_pixels': px.get('n_pos'),
        'in_distribution_pixels': px.get('n_neg'),
        'note': px.get('note'),
        'mIoU': seg.get('miou'),
        'smiyc_mean_F1': comp.get('smiyc', {}).get('mean_f1'),  # at the pixel-F1-optimal threshold, never a fixed one
        'smiyc_threshold': comp.get('threshold'),
        'smiyc_track': comp.get('track'),
        'chan_F1': comp.get('chan', {}).get('f1'),
        'latency_end_to_end': lat.get('end_to_end'),
        'frames_by_status': lat.get('frames_by_status'),
        'skipped': len(report.get('skipped', [])),
        'failed': len(report.get('failed', [])),
    }
    result: dict[str, Any] = to_jsonable(out)
    return result
