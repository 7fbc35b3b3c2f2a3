"""report.html: one self-contained page for people, rendered with Jinja2 from ``templates/report.html.j2``.

The page works offline: inline CSS, no script, no external font or URL; every figure is a PNG (JPEG for
photos) embedded as a base64 data URI. Top to bottom it shows:

1. what was evaluated (``report['evaluated']`` as a definition table, first so nobody can miss it);
2. a headline row: AP, FPR95, AUROC, mIoU and SMIYC mean F1 (when present, the latter with its track and
   threshold policy), frames, dropped;
3. figures: PR and ROC curves (with the FPR95 point), the in-distribution vs anomaly score histogram,
   latency over time (p50 / p95 lines, dropped / late / skipped frames marked);
4. every other section of ``report`` as tables (nested dicts flattened to dotted keys, floats with 4
   significant digits, None as '—' next to the section's note);
5. the worst frames: camera image with the ground-truth anomaly contour (ignore region hatched), the
   ground-truth mask, the score heatmap;
6. a per-frame table (the first ``MAX_FRAME_ROWS``).

This module only builds plain view data; all markup is in the template. Autoescape is on, so every string
taken from data (names, reasons, paths, notes) is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from ...metrics.pixel import Curves
from ..records import FrameRecord, WorstFrame
from .figures import figure_views
from .json_report import atomic_write, to_jsonable
from .tables import Block, flatten, kv_table, section_blocks
from .values import Value, finite, format_number, note_of, status_kind
from .worst_frames import worst_frame_views

__all__ = ['MAX_FRAME_ROWS', 'TEMPLATE', 'render_html_report', 'write_html_report']

#: the per-frame table shows at most this many rows (the page says how many were left out).
MAX_FRAME_ROWS = 2000
#: the page template, in this package's ``templates`` folder.
TEMPLATE = 'report.html.j2'


@dataclass(frozen=True)
class Card:
    """One headline number with its label and a line under it; ``bad`` flags it (missing, zero ok frames)."""

    label: str
    value: Value
    sub: str
    bad: bool = False


@dataclass(frozen=True)
class FrameRow:
    """One row of the per-frame table."""

    kind: str  # status kind: ok | dropped | late | skipped | failed | other
    index: Value
    name: str
    status: str
    n_anomaly_px: Value
    n_in_dist_px: Value
    ap: Value
    mean_score_anomaly: Value
    mean_score_in_dist: Value
    latency: Value
    stages: str  # per-stage latencies, shown as the latency's tooltip


def _escape(value: Any) -> Any:
    """Escape with the standard library (``'`` as ``&#x27;``, as the page always had); markup passes through.

    Jinja's autoescape would escape the same five characters, only spelled differently.
    """
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(str(value), quote=True))


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader(__package__ or 'anomaly_seg_ros.eval.report', 'templates'),
        autoescape=True,
        finalize=_escape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _frame_counts(frames: Sequence[FrameRecord]) -> dict[str, int]:
    counts = {'ok': 0, 'dropped': 0, 'late': 0, 'skipped': 0, 'failed': 0, 'other': 0}
    for f in frames:
        counts[status_kind(f.status)] += 1
    return counts


def headline_cards(report: Mapping, frames: Sequence[FrameRecord]) -> list[Card]:
    """AP, FPR95, AUROC, mIoU (when present), frames and dropped, each with what it means."""
    pixel = report.get('pixel')
    if not isinstance(pixel, Mapping):
        pixel = {}
    note = note_of(pixel)
    cards = []

    def metric(label: str, key: str, sub: str) -> None:
        v = pixel.get(key)
        v = finite(v) if v is not None else None
        bound = finite(pixel.get(f'{key}_error_bound'))
        extra = f'\u00b1 {bound:.2g} (binning bound); ' if bound else ''
        if v is None:
            cards.append(Card(label, format_number(None), note or 'not computed', bad=True))
        else:
            cards.append(Card(label, format_number(v), extra + sub))

    n_pos, n_neg = pixel.get('n_pos'), pixel.get('n_neg')
    px = f'{n_pos} anomaly / {n_neg} in-dist px' if n_pos is not None else 'pixel-level, pooled'
    metric('AP', 'ap', f'higher is better; {px}')
    metric('FPR95', 'fpr95', 'FPR at 95 % TPR; lower is better')
    metric('AUROC', 'auroc', 'higher is better')
    seg = report.get('segmentation')
    if isinstance(seg, Mapping) and 'miou' in seg:
        miou = finite(seg.get('miou'))
        sub = 'segmentation, dataset-wide' if miou is not None else (note_of(seg) or 'undefined')
        cards.append(Card('mIoU', format_number(miou), sub, bad=miou is None))
    comp = report.get('components')
    if isinstance(comp, Mapping) and isinstance(comp.get('smiyc'), Mapping):
        cards.append(_smiyc_card(comp))
    counts = _frame_counts(frames)
    if frames:
        parts = [f'{counts["ok"]} ok']
        parts += [f'{counts[k]} {k}' for k in ('late', 'skipped', 'failed', 'other') if counts[k]]
        cards.append(Card('frames', format_number(len(frames)), ', '.join(parts), bad=counts['ok'] == 0))
        dropped: Any = counts['dropped']
    else:
        ev = report.get('evaluated')
        if not isinstance(ev, Mapping):
            ev = {}
        n = next((ev[k] for k in ('frames', 'n_frames', 'frame_count') if k in ev), None)
        cards.append(Card('frames', format_number(n), 'no frame records', bad=True))
        lat = report.get('latency')
        if not isinstance(lat, Mapping):
            lat = {}
        dropped = lat.get('dropped')
    cards.append(Card('dropped', format_number(dropped), 'messages the node dropped', bad=bool(dropped)))
    return cards


def _smiyc_card(comp: Mapping) -> Card:
    """SMIYC mean F1 with what it was computed at: the track's size filters and the threshold policy."""
    f1 = finite(comp['smiyc'].get('mean_f1'))
    t = finite(comp.get('threshold'))
    where = f'track {comp.get("track")} ({comp.get("min_pred_size")} / {comp.get("min_gt_size")} px)'
    if t is None:
        return Card('SMIYC mean F1', format_number(f1), f'{where}; {note_of(comp["smiyc"]) or "no threshold"}', True)
    policy = str(comp.get('threshold_policy', ''))
    if comp.get('threshold_is_optimal') is False:
        policy += f', best candidate; run optimum {format_number(finite(comp.get("pixel_f1_optimal_threshold"))).text}'
    return Card('SMIYC mean F1', format_number(f1), f'{where}; at {format_number(t).text} ({policy})', f1 is None)


def frame_rows(frames: Sequence[FrameRecord]) -> list[FrameRow]:
    """Rows of the per-frame table, the first ``MAX_FRAME_ROWS`` frames."""
    rows = []
    for f in frames[:MAX_FRAME_ROWS]:
        stages = ', '.join(
            f'{k} {ms:.3g} ms' if (ms := finite(v)) is not None else f'{k} ?' for k, v in (f.stage_ms or {}).items()
        )
        rows.append(
            FrameRow(
                kind=status_kind(f.status),
                index=format_number(f.index),
                name=f.name,
                status=f.status,
                n_anomaly_px=format_number(f.n_anomaly_px),
                n_in_dist_px=format_number(f.n_in_dist_px),
                ap=format_number(finite(f.ap)),
                mean_score_anomaly=format_number(finite(f.mean_score_anomaly)),
                mean_score_in_dist=format_number(finite(f.mean_score_in_dist)),
                latency=format_number(finite(f.latency_ms)),
                stages=stages,
            )
        )
    return rows


def _evaluated_blocks(evaluated: Any) -> list[Block]:
    if isinstance(evaluated, dict) and evaluated:
        return [kv_table(flatten(evaluated))]
    if evaluated:
        return [kv_table([('evaluated', evaluated, '')])]
    return []


def render_html_report(
    report: dict,
    curves: Curves | None,
    frames: Sequence[FrameRecord],
    worst: Sequence[WorstFrame],
    *,
    title: str = 'anomaly_seg_ros evaluation',
) -> str:
    """The self-contained HTML page for ``report`` as a string (see the module docstring for the layout)."""
    data = to_jsonable(report, keep_nonfinite=True) if report is not None else {}
    if not isinstance(data, dict):
        raise TypeError(f'report must be a dict, got {type(report).__name__}')
    frames = list(frames or [])
    worst = list(worst or [])
    pixel = data.get('pixel')
    if not isinstance(pixel, dict):
        pixel = {}
    n_left_out = max(0, len(frames) - MAX_FRAME_ROWS)
    template = _environment().get_template(TEMPLATE)
    return template.render(
        title=title,
        generated=datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M:%S UTC'),
        evaluated=_evaluated_blocks(data.get('evaluated')),
        cards=headline_cards(data, frames),
        pixel_note=note_of(pixel),
        figure_rows=figure_views(curves, pixel, frames),
        sections=[(key, section_blocks(value)) for key, value in data.items() if key != 'evaluated'],
        worst=worst_frame_views(worst),
        frames=frame_rows(frames),
        n_frames=len(frames),
        n_left_out=n_left_out,
        max_frame_rows=MAX_FRAME_ROWS,
    )


def write_html_report(
    report: dict,
    curves: Curves | None,
    frames: list[FrameRecord],
    worst: list[WorstFrame],
    path: Path,
    *,
    title: str = 'anomaly_seg_ros evaluation',
) -> None:
    """Write the self-contained HTML page for ``report`` to ``path`` (atomically)."""
    atomic_write(Path(path), render_html_report(report, curves, frames, worst, title=title))
