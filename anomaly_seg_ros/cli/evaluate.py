"""`anomaly-seg evaluate`: replay a bag or a dataset through the Pipeline or the live node; print the headline."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..defaults import (
    EVAL_MIN_GT_SIZE,
    EVAL_MIN_PRED_SIZE,
    EVAL_MODE,
    EVAL_MODES,
    EVAL_WORST_K,
    GT_ANOMALY_TOPIC,
    GT_LABELS_TOPIC,
    LIVE_RATE_SCALE,
    SYNTHETIC_EVAL_COUNT,
    SYNTHETIC_EVAL_SEED,
    SYNTHETIC_FRAME_SIZE,
)
from ..errors import AnomalySegError
from ..metrics.pixel import DEFAULT_BINS
from .outputs import prepare_out_dir
from .types import IntRange, SizeArg, dataset_formats, finite_float, positive_float, positive_int

#: --min-gt-size / --min-pred-size: pixels, 0 = no filter
non_negative_int = IntRange(0)
#: --track choices and --component-thresholds default; the same as ``eval.accumulate.SMIYC_TRACK_CHOICES`` and
#: ``DEFAULT_COMPONENT_THRESHOLDS`` (test_smiyc_protocol checks), spelt out so that --help loads neither scipy
#: nor OpenCV
SMIYC_TRACK_CHOICES = ('anomaly', 'obstacle', 'none')
DEFAULT_COMPONENT_THRESHOLDS = 16

if TYPE_CHECKING:
    from .help_format import CommandParser, Subparsers

__all__ = ['PIXEL_BINS', 'REPORT_FILES', 'add_parser', 'run']

#: --bins: at least 2 (one bin puts every pixel in one group: AP and AUROC say nothing); at most 2**24, where the
#: 2 x bins int64 histogram and the per-frame bincounts already take ~0.5 GiB (4e9 bins would take 60 GiB).
PIXEL_BINS = IntRange(2, 2**24)
#: what `evaluate --out DIR` writes into DIR
REPORT_FILES = ('report.json', 'report.html')

HELP = (
    'replay a bag (or a dataset) through the Pipeline or the live node; '
    'benchmark metrics, latency, report.json + report.html'
)


def add_parser(subparsers: Subparsers) -> CommandParser:
    ev = subparsers.add_parser('evaluate', help=HELP, description=HELP)
    src = ev.add_argument_group('source (one of --bag, --dataset)')
    src.add_argument('--bag', type=Path, help='rosbag2 folder/file (mcap, sqlite3) or ROS 1 bag')
    src.add_argument('--dataset', help='synthetic, or a dataset format: ' + ', '.join(dataset_formats()))
    src.add_argument('--root', type=Path, help='dataset root for --dataset FORMAT')
    src.add_argument('--split', help='dataset split (cityscapes/lostandfound)')
    src.add_argument('--count', type=positive_int, default=SYNTHETIC_EVAL_COUNT, help='synthetic: number of frames')
    src.add_argument(
        '--seed', type=int, default=SYNTHETIC_EVAL_SEED, help='synthetic: world seed of the held-out split'
    )
    src.add_argument('--size', type=SizeArg(), default=SYNTHETIC_FRAME_SIZE, help='synthetic: frame WIDTHxHEIGHT')
    src.add_argument('--limit', type=positive_int, help='evaluate only the first N frames')
    src.add_argument('--image-topic', help='bag image topic (default: the only Image/CompressedImage topic)')
    src.add_argument(
        '--anomaly-topic',
        help=f'bag anomaly GT topic (mono8 0/1/255); a named topic must be in the bag '
        f'(default: {GT_ANOMALY_TOPIC} if the bag has it)',
    )
    src.add_argument(
        '--labels-topic',
        help=f'bag trainId GT topic (mono8); a named topic must be in the bag '
        f'(default: {GT_LABELS_TOPIC} if the bag has it)',
    )
    src.add_argument('--strict', action='store_true', help='stop at the first bad message instead of skipping it')
    run_group = ev.add_argument_group('what runs')
    run_group.add_argument(
        '--mode',
        choices=EVAL_MODES,
        default=EVAL_MODE,
        help='offline: Pipeline as fast as it can; live: the node, fed at the recorded rate',
    )
    run_group.add_argument('--params', type=Path, help='node params file (default: config/default.yaml)')
    run_group.add_argument(
        '--model',
        help='override the params file: model folder or name under models/; a comma-separated list compares them',
    )
    run_group.add_argument(
        '--scorer',
        help='override the params file: scorer; a comma-separated list compares them (an ablation: every model x '
        'scorer on the same frames, one table; a pair the model cannot run is listed with the reason)',
    )
    run_group.add_argument('--backend', help='override the params file: backend')
    run_group.add_argument('--device', help='override the params file: device')
    run_group.add_argument(
        '--rate-scale', type=positive_float, default=LIVE_RATE_SCALE, help='live: play at the recorded rate times this'
    )
    run_group.add_argument(
        '--late-ms', type=positive_float, help='live: answers later than this count as late (default: 2 periods)'
    )
    met = ev.add_argument_group('metrics')
    met.add_argument('--exact', action='store_true', help='exact pixel metrics (small runs only; otherwise binned)')
    met.add_argument('--bins', type=PIXEL_BINS, default=DEFAULT_BINS, help='bins of the streaming pixel metrics')
    met.add_argument(
        '--threshold',
        type=finite_float,
        help='fixed threshold, anomaly where score > T: Chan et al. segment errors (default: mid-range) and SMIYC '
        'reported as components.fixed_threshold; the SMIYC headline always uses the pixel-F1-optimal threshold',
    )
    met.add_argument(
        '--track',
        choices=SMIYC_TRACK_CHOICES,
        default='anomaly',
        help='SMIYC size filters as the benchmark: anomaly (predicted components < 500 px dropped, GT components '
        '< 100 px void), obstacle (50 / 10 px), none (--min-pred-size / --min-gt-size); default: anomaly',
    )
    met.add_argument(
        '--min-gt-size',
        type=non_negative_int,
        default=EVAL_MIN_GT_SIZE,
        help='SMIYC with --track none: ignore GT components smaller than this',
    )
    met.add_argument(
        '--min-pred-size',
        type=non_negative_int,
        default=EVAL_MIN_PRED_SIZE,
        help='SMIYC with --track none: drop predicted components smaller than this',
    )
    met.add_argument(
        '--component-thresholds',
        type=positive_int,
        default=DEFAULT_COMPONENT_THRESHOLDS,
        help='SMIYC: candidate thresholds scored in the one pass; the one with the best pixel F1 of the run is '
        'reported (more: closer to the true optimum, slower)',
    )
    met.add_argument(
        '--worst', type=int, default=EVAL_WORST_K, help='worst frames shown per criterion in the HTML report'
    )
    ev.add_argument('--out', type=Path, help='folder for report.json and report.html')
    ev.add_argument('--overwrite', action='store_true', help='replace report.json/report.html already in --out')
    return ev


def _listed(value: str | None) -> list[str | None]:
    if value is None or ',' not in value:
        return [value]
    items = [v.strip() for v in value.split(',') if v.strip()]
    if not items:
        raise AnomalySegError(f'evaluate: empty list {value!r}')
    return list(dict.fromkeys(items))


def run(args: argparse.Namespace) -> int:
    pairs = [(m, sc) for m in _listed(args.model) for sc in _listed(args.scorer)]
    if len(pairs) > 1:
        return _run_comparison(args, pairs)
    # Before any work: a refused or unwritable --out must not cost a whole run.
    if args.out is not None:
        prepare_out_dir(args.out, REPORT_FILES, overwrite=args.overwrite, command='evaluate')
    from ..evaluate import NothingToEvaluateError, headline, run_evaluate

    opts = _options(args, args.model, args.scorer, args.out)
    try:
        if opts.mode == 'live':
            from ..ros.live_eval import run_live

            evaluation = run_live(opts)
        else:
            evaluation = run_evaluate(opts)
    except NothingToEvaluateError as e:  # the headline still goes to stdout; main() makes the error exit 2
        print(json.dumps(headline(e.run.report), indent=2, allow_nan=False))
        raise
    print(json.dumps(headline(evaluation.report), indent=2, allow_nan=False))
    if args.out:
        print(f'wrote {args.out}/report.json and {args.out}/report.html', file=sys.stderr)
    return 0


def _run_comparison(args: argparse.Namespace, pairs: list[tuple[str | None, str | None]]) -> int:
    """Every (model, scorer) pair on the same frames, one after the other; a table and a JSON list at the end.

    A pair that cannot start (a scorer without its fitted artefact, a tap the model lacks) is a row with the
    reason, not the end of the run. With --out, each pair writes its report into OUT/MODEL__SCORER/."""
    from ..evaluate import run_evaluate

    if args.mode == 'live':
        raise AnomalySegError('evaluate: comparing several models or scorers runs offline only; drop --mode live')
    names = {pair: f'{Path(pair[0] or "params").name}__{pair[1] or "model-scorer"}' for pair in pairs}
    if args.out is not None:
        for pair in pairs:
            prepare_out_dir(args.out / names[pair], REPORT_FILES, overwrite=args.overwrite, command='evaluate')
    rows: list[dict[str, object]] = []
    for i, (model, scorer) in enumerate(pairs, 1):
        print(
            f'[{i}/{len(pairs)}] model {model or "(params file)"}, scorer {scorer or "(model default)"}',
            file=sys.stderr,
        )
        out = args.out / names[(model, scorer)] if args.out is not None else None
        try:
            report = run_evaluate(_options(args, model, scorer, out)).report
        except AnomalySegError as e:
            rows.append({'model': model, 'scorer': scorer, 'error': str(e)})
            print(f'  not evaluated: {e}', file=sys.stderr)
            continue
        rows.append({'model': model, 'scorer': scorer, **comparison_row(report)})
    print(comparison_table(rows))
    print(json.dumps(rows, indent=2, allow_nan=False))
    if not any('error' not in r for r in rows):
        raise AnomalySegError('evaluate: no model and scorer pair could be evaluated (reasons above)')
    return 0


def comparison_row(report: dict[str, object]) -> dict[str, object]:
    """The figures of one ablation row, JSON-safe (from the headline the single run prints)."""
    from ..evaluate import headline

    h = headline(report)  # type: ignore[arg-type]
    lat = h.get('latency_end_to_end') or {}
    return {
        'AP': h['AP'],
        'FPR95': h['FPR95'],
        'AUROC': h['AUROC'],
        'smiyc_mean_F1': h['smiyc_mean_F1'],
        'mIoU': h['mIoU'],
        'ms_per_frame_p50': lat.get('p50_ms') if isinstance(lat, dict) else None,
        'frames': (h['frames_by_status'] or {}).get('ok') if isinstance(h['frames_by_status'], dict) else None,
    }


def comparison_table(rows: list[dict[str, object]]) -> str:
    def f(v: object, digits: int) -> str:
        return f'{v:.{digits}f}' if isinstance(v, (int, float)) and not isinstance(v, bool) else '—'

    lines = [
        '| model | scorer | AP | FPR95 | AUROC | SMIYC mean F1 | mIoU | ms/frame p50 |',
        '|---|---|---:|---:|---:|---:|---:|---:|',
    ]
    for r in rows:
        head = f'| {r["model"] or "(params)"} | {r["scorer"] or "(default)"} |'
        if 'error' in r:
            lines.append(f'{head} not evaluated: {r["error"]} | | | | | |')
            continue
        lines.append(
            f'{head} {f(r["AP"], 4)} | {f(r["FPR95"], 3)} | {f(r["AUROC"], 3)} | {f(r["smiyc_mean_F1"], 3)} '
            f'| {f(r["mIoU"], 3)} | {f(r["ms_per_frame_p50"], 1)} |'
        )
    return '\n'.join(lines)


def _options(args: argparse.Namespace, model: str | None, scorer: str | None, out: Path | None) -> Any:
    from ..evaluate import EvaluateOptions

    return EvaluateOptions(
        bag=args.bag,
        dataset=args.dataset,
        root=args.root,
        split=args.split,
        count=args.count,
        seed=args.seed,
        size=args.size,
        limit=args.limit,
        image_topic=args.image_topic,
        anomaly_topic=args.anomaly_topic,
        labels_topic=args.labels_topic,
        strict=args.strict,
        mode=args.mode,
        params=args.params,
        overrides={'model': model, 'scorer': scorer, 'backend': args.backend, 'device': args.device},
        rate_scale=args.rate_scale,
        late_ms=args.late_ms,
        exact=args.exact,
        bins=args.bins,
        threshold=args.threshold,
        track=args.track,
        min_gt_size=args.min_gt_size,
        min_pred_size=args.min_pred_size,
        component_thresholds=args.component_thresholds,
        worst_k=args.worst,
        out=out,
    )
