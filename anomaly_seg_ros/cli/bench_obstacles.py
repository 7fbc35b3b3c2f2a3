"""`anomaly-seg bench-obstacles`: time of the obstacle stage (segments, metrics, meta classifier) per frame.

Score maps are constructed, not inferred, so the figure is the stage alone and the segment count is exact:
the frame is divided into a grid of cells and K of them (chosen at random) hold a rectangle of high score
(0.6..1) with a margin of background (0..0.4) around it, so the K blobs never touch and give exactly K
segments at t = 0.5; the three aux maps are random. Each size x count runs --repeats times after one warm-up
call; p50 and p95 are printed per stage (extraction = extract_segments, features = segment_features,
classify = MetaClassifier.predict_proba with a classifier of random coefficients: its cost does not depend
on the values).
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from .types import SizeArg, positive_int

if TYPE_CHECKING:
    import numpy as np

    from .help_format import CommandParser, Subparsers

__all__ = ['add_parser', 'blob_maps', 'run']

HELP = 'obstacle-stage time: segment extraction, segment metrics and meta classification per frame (p50/p95)'


def _sizes(text: str) -> list[tuple[int, int]]:
    return [SizeArg()(part) for part in text.split(',') if part.strip()]


def _counts(text: str) -> list[int]:
    return [positive_int(part) for part in text.split(',') if part.strip()]


def add_parser(subparsers: Subparsers) -> CommandParser:
    p = subparsers.add_parser('bench-obstacles', help=HELP, description=f'{HELP}.\n\n{__doc__}')
    p.add_argument(
        '--sizes', type=_sizes, default=[(1024, 512), (2048, 1024)], help='comma-separated frame WIDTHxHEIGHT sizes'
    )
    p.add_argument('--segments', type=_counts, default=[10, 100, 1000], help='comma-separated segment counts')
    p.add_argument('--repeats', type=positive_int, default=20, help='timed runs per size and count')
    p.add_argument('--seed', type=int, default=0, help='seed of the constructed maps')
    return p


def blob_maps(width: int, height: int, count: int, seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A score map with exactly `count` separate blobs (>= 0.5) and the three aux maps (module docstring)."""
    import numpy as np  # noqa: PLC0415

    from ..errors import ConfigError  # noqa: PLC0415
    from ..obstacles import AUX_MAPS  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    # the most square grid with at least `count` cells
    cols = max(1, int(np.ceil(np.sqrt(count * width / height))))
    rows = int(np.ceil(count / cols))
    ch, cw = height // rows, width // cols
    if ch < 3 or cw < 3:
        raise ConfigError(f'bench-obstacles: {count} segments do not fit a {width}x{height} frame (cells {cw}x{ch})')
    score = rng.uniform(0.0, 0.4, (height, width)).astype(np.float32)
    cells = rng.choice(rows * cols, size=count, replace=False)
    for c in cells:  # setup, not timed
        r, q = divmod(int(c), cols)
        bh, bw = int(rng.integers(1, ch - 1)), int(rng.integers(1, cw - 1))
        y0, x0 = r * ch + 1 + int(rng.integers(0, ch - 1 - bh)), q * cw + 1 + int(rng.integers(0, cw - 1 - bw))
        score[y0 : y0 + bh, x0 : x0 + bw] = rng.uniform(0.6, 1.0, (bh, bw))
    aux = {a: rng.uniform(0, 1, (height, width)).astype(np.float32) for a in AUX_MAPS.values()}
    return score, aux


def run(args: argparse.Namespace) -> int:
    import numpy as np  # noqa: PLC0415

    from ..obstacles import FEATURE_NAMES, MetaClassifier, extract_segments, segment_features  # noqa: PLC0415

    rng = np.random.default_rng(args.seed)
    f = len(FEATURE_NAMES)
    clf = MetaClassifier(
        FEATURE_NAMES, rng.normal(size=f), rng.uniform(0.5, 2, f), rng.normal(size=f), 0.0, 0.5, 0.5, 1, 'bench'
    )
    stages = ('extract', 'features', 'classify', 'total')
    header = f'{"size":>10} {"segments":>8} ' + ' '.join(f'{s + " p50/p95 ms":>22}' for s in stages)
    print(header)
    for w, h in args.sizes:
        for k in args.segments:
            score, aux = blob_maps(w, h, k, args.seed)
            times: dict[str, list[float]] = {s: [] for s in stages}
            found = 0
            for i in range(args.repeats + 1):
                t0 = time.perf_counter()
                seg = extract_segments(score, 0.5, 1)
                t1 = time.perf_counter()
                feats = segment_features(seg, score, aux)
                t2 = time.perf_counter()
                clf.predict_proba(feats.values)
                t3 = time.perf_counter()
                found = seg.count
                if i == 0:
                    continue  # warm-up
                for s, v in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t3 - t0), strict=True):
                    times[s].append(v * 1e3)
            cells = ' '.join(
                f'{np.percentile(times[s], 50):>10.2f} /{np.percentile(times[s], 95):>9.2f}' for s in stages
            )
            print(f'{f"{w}x{h}":>10} {found:>8} {cells}')
    return 0
