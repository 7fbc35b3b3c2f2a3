"""Evaluation reports: every number as JSON, and one self-contained HTML page for people.

``write_json_report(report, path)`` writes the nested ``report`` dict as strict JSON: NaN and +-inf become
``null`` (JSON has no NaN), numpy scalars and arrays become plain numbers and lists, tuples become lists,
dataclasses dicts and paths strings; keys keep their order.

``write_html_report(report, curves, frames, worst, path)`` writes one HTML file that works offline: inline
CSS, no script, no external font or URL; every figure is a PNG (JPEG for photos) embedded as a base64 data
URI. The page shows, top to bottom:

1. what was evaluated (``report['evaluated']`` as a definition table, first so nobody can miss it);
2. a headline row: AP, FPR95, AUROC, mIoU (when present), frames, dropped;
3. figures: PR and ROC curves (with the FPR95 point), the in-distribution vs anomaly score histogram,
   latency over time (p50 / p95 lines, dropped / late / skipped frames marked);
4. every other section of ``report`` as tables (nested dicts flattened to dotted keys, floats with 4
   significant digits, None as '—' next to the section's note);
5. the worst frames: camera image with the ground-truth anomaly contour (ignore region hatched), the
   ground-truth mask, the score heatmap;
6. a per-frame table (the first ``MAX_FRAME_ROWS``).

Every string taken from data (names, reasons, paths, notes) goes through ``html.escape``. A figure that
cannot be drawn (no curve data, no anomaly pixel, no latency, matplotlib missing, a malformed worst frame)
is replaced by a sentence saying why; the report is written regardless.

matplotlib is imported lazily and used without pyplot (``Figure`` + ``FigureCanvasAgg``): no global
backend state is touched, and the rest of the package does not need it.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
import logging
import math
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np

from ..classes import ANOMALY_ID, ANOMALY_IGNORE
from ..viz import heatmap_overlay
from .pixel_metrics import FPR95_TPR, Curves

__all__ = [
    'MAX_FRAME_ROWS',
    'MAX_IMAGE_WIDTH',
    'FrameRecord',
    'WorstFrame',
    'to_jsonable',
    'write_html_report',
    'write_json_report',
]

log = logging.getLogger(__name__)

#: the per-frame table shows at most this many rows (the page says how many were left out).
MAX_FRAME_ROWS = 2000
#: worst-frame images are downscaled to at most this width (pixels) before embedding.
MAX_IMAGE_WIDTH = 640
#: record / skipped tables (lists of dicts) show at most this many rows.
MAX_LIST_ROWS = 2000
#: lists of numbers longer than this are shown truncated in tables (the JSON has them all).
MAX_INLINE_VALUES = 24
JPEG_QUALITY = 85
DASH = '\u2014'


# ---------------------------------------------------------------------------------------------------
# Inputs.
# ---------------------------------------------------------------------------------------------------


@dataclass
class FrameRecord:
    """One message / sample of the run, as the per-frame table and the latency plot show it."""

    index: int  # message / sample index
    name: str
    stamp_ns: int
    status: str  # 'ok' | 'dropped' | 'late' | 'skipped: <reason>'
    n_anomaly_px: int = 0
    n_in_dist_px: int = 0
    ap: float | None = None  # this frame's own AP (None: no anomaly pixel or not evaluated)
    mean_score_anomaly: float | None = None
    mean_score_in_dist: float | None = None
    latency_ms: float | None = None  # end-to-end or pipeline total for this frame
    stage_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class WorstFrame:
    """A frame picked for inspection, with why it was picked."""

    name: str
    why: str  # e.g. 'lowest frame AP 0.12' or 'highest in-distribution score 0.93'
    image: np.ndarray  # RGB uint8 HxWx3
    anomaly_gt: np.ndarray  # uint8 HxW 0/1/255
    score: np.ndarray  # float32 HxW
    score_range: tuple[float, float]


# ---------------------------------------------------------------------------------------------------
# JSON.
# ---------------------------------------------------------------------------------------------------


def to_jsonable(obj: Any, *, keep_nonfinite: bool = False, _where: str = 'report') -> Any:
    """Plain-Python copy of ``obj`` that ``json.dumps(..., allow_nan=False)`` accepts.

    NaN / +-inf become None (unless ``keep_nonfinite``), numpy scalars -> Python scalars, arrays / tuples /
    sets -> lists, dataclass instances -> dicts, paths -> str, mapping keys -> str. Anything else raises
    TypeError naming where it sits (a silent ``str()`` could hide a wrong number).
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item(), keep_nonfinite=keep_nonfinite, _where=_where)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj) if keep_nonfinite or math.isfinite(obj) else None
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist(), keep_nonfinite=keep_nonfinite, _where=_where)
    if isinstance(obj, Mapping):
        return {
            str(k.item() if isinstance(k, np.generic) else k): to_jsonable(
                v, keep_nonfinite=keep_nonfinite, _where=f'{_where}.{k}'
            )
            for k, v in obj.items()
        }
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
        return [to_jsonable(v, keep_nonfinite=keep_nonfinite, _where=f'{_where}[{i}]') for i, v in enumerate(items)]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(
            {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)},
            keep_nonfinite=keep_nonfinite,
            _where=_where,
        )
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f'{_where}: {type(obj).__name__} is not JSON-serialisable')


def _atomic_write(path: Path, data: str) -> None:
    """Write ``data`` (UTF-8) to ``path`` via a temporary file in the same folder, so no half file remains."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # open(..., 'x') rather than mkstemp: the file gets the usual umask permissions, not 0600
    tmp = path.parent / f'.{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp'
    try:
        with open(tmp, 'x', encoding='utf-8') as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_json_report(report: dict, path: Path) -> None:
    """Write ``report`` as strict JSON (indent 2, keys in their order, NaN/inf -> null, numpy -> plain)."""
    text = json.dumps(to_jsonable(report), indent=2, sort_keys=False, allow_nan=False, ensure_ascii=False)
    _atomic_write(Path(path), text + '\n')


# ---------------------------------------------------------------------------------------------------
# Value formatting.
# ---------------------------------------------------------------------------------------------------


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def _fmt_num(v: Any) -> str:
    """HTML for one scalar: floats with 4 significant digits (full value in a tooltip), None as a dash."""
    if v is None:
        return f'<span class="na">{DASH}</span>'
    if isinstance(v, bool):
        return 'true' if v else 'false'
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return f'<span class="na">{DASH}</span>'
        if math.isinf(v):
            return '\u221e' if v > 0 else '\u2212\u221e'
        short = f'{v:.4g}'
        full = repr(v)
        return short if float(short) == v else f'<span title="{_esc(full)}">{short}</span>'
    return _esc(v)


def _fmt_value(v: Any, note: str = '') -> str:
    """HTML for a table cell: scalars via _fmt_num, lists of scalars inline (truncated), None + note."""
    if isinstance(v, list):
        if all(_is_scalar(x) and not isinstance(x, str) for x in v):
            shown = ', '.join(_fmt_num(x) for x in v[:MAX_INLINE_VALUES])
            more = f', \u2026 ({len(v)} values)' if len(v) > MAX_INLINE_VALUES else ''
            return f'[{shown}{more}]'
        shown = ', '.join(_fmt_num(x) if _is_scalar(x) else _esc(json.dumps(x)) for x in v[:MAX_INLINE_VALUES])
        more = f', \u2026 ({len(v)} items)' if len(v) > MAX_INLINE_VALUES else ''
        return f'[{shown}{more}]'
    if isinstance(v, dict):  # only reached for dicts nested inside lists
        return _esc(json.dumps(v))
    if (v is None or (isinstance(v, float) and math.isnan(v))) and note:
        return f'<span class="na">{DASH}</span> <span class="note">({_esc(note)})</span>'
    return _fmt_num(v)


def _note_of(d: Mapping) -> str:
    note = d.get('note')
    return note if isinstance(note, str) else ''


# ---------------------------------------------------------------------------------------------------
# Tables.
# ---------------------------------------------------------------------------------------------------


def _flatten(d: Mapping, prefix: str = '', note: str = '') -> list[tuple[str, Any, str]]:
    """(dotted key, value, note of the nearest dict holding it) for every leaf; lists stay whole."""
    rows: list[tuple[str, Any, str]] = []
    note = _note_of(d) or note
    for k, v in d.items():
        key = f'{prefix}{k}'
        if isinstance(v, dict) and v:
            rows.extend(_flatten(v, key + '.', note))
        elif k == 'note' and not v:
            continue  # an empty note says nothing
        else:
            rows.append((key, v, note))
    return rows


def _kv_table(rows: list[tuple[str, Any, str]], cls: str = 'kv') -> str:
    body = ''.join(f'<tr><th>{_esc(k)}</th><td>{_fmt_value(v, note)}</td></tr>' for k, v, note in rows)
    return f'<table class="{cls}">{body}</table>'


def _record_table(
    records: Sequence[Mapping], caption: str = '', row_key: str | None = None, row_names: Sequence[str] | None = None
) -> str:
    """Table with one row per record (dict of scalars) and one column per key (first-seen order)."""
    cols: list[str] = []
    for r in records:
        for k in r:
            if k not in cols:
                cols.append(k)
    shown = list(records[:MAX_LIST_ROWS])
    head = f'<th>{_esc(row_key)}</th>' if row_names is not None else ''
    head += ''.join(f'<th>{_esc(c)}</th>' for c in cols)
    body = []
    for i, r in enumerate(shown):
        first = f'<th>{_esc(row_names[i])}</th>' if row_names is not None else ''
        note = _note_of(r)
        body.append(
            '<tr>' + first + ''.join(f'<td>{_fmt_value(r.get(c), note) if c in r else ""}</td>' for c in cols) + '</tr>'
        )
    more = ''
    if len(records) > MAX_LIST_ROWS:
        more = (
            f'<p class="note">showing the first {MAX_LIST_ROWS} of {len(records)} rows (all are in the JSON report)</p>'
        )
    cap = f'<caption>{_esc(caption)}</caption>' if caption else ''
    return f'<table class="grid">{cap}<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>{more}'


def _is_record(v: Any) -> bool:
    return isinstance(v, dict) and bool(v) and all(_is_scalar(x) for x in v.values())


def _section_body(obj: Any, prefix: str = '', inherited_note: str = '') -> str:
    """Tables for one report section, generic over its shape.

    - a dict's scalar / list leaves (nested dicts flattened to dotted keys) -> one key/value table;
    - two or more sibling dicts of scalars (e.g. latency stages -> {p50, p95, ...}) -> one matrix table;
    - a list of dicts (e.g. skipped messages) -> a table with one row per item.
    """
    if isinstance(obj, list):
        if obj and all(isinstance(x, dict) for x in obj):
            return _record_table(obj)
        return _kv_table([(prefix.rstrip('.') or 'value', obj, '')])
    if not isinstance(obj, dict):
        return _kv_table([(prefix.rstrip('.') or 'value', obj, '')])
    if not obj:
        return '<p class="note">(empty)</p>'
    records = {k: v for k, v in obj.items() if _is_record(v)}
    n_cols = len({c for v in records.values() for c in v})
    as_matrix = len(records) >= 2 and n_cols <= 12
    kv_rows: list[tuple[str, Any, str]] = []
    extra: list[str] = []
    note = _note_of(obj) or inherited_note
    for k, v in obj.items():
        key = f'{prefix}{k}'
        if as_matrix and k in records:
            continue
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            extra.append(f'<h4>{_esc(key)}</h4>' + _record_table(v))
        elif isinstance(v, dict) and v:
            sub_records = {kk: vv for kk, vv in v.items() if _is_record(vv)}
            if len(sub_records) >= 2 or any(
                isinstance(vv, list) and vv and isinstance(vv[0], dict) for vv in v.values()
            ):
                extra.append(f'<h4>{_esc(key)}</h4>' + _section_body(v, key + '.', note))
            else:
                kv_rows.extend(_flatten(v, key + '.', note))
        elif not (k == 'note' and not v):
            kv_rows.append((key, v, note))
    parts = []
    if as_matrix:
        names = list(records)
        parts.append(_record_table([records[n] for n in names], row_key=prefix.rstrip('.') or '', row_names=names))
    if kv_rows:
        parts.append(_kv_table(kv_rows))
    parts.extend(extra)
    return ''.join(parts)


# ---------------------------------------------------------------------------------------------------
# Figures.
# ---------------------------------------------------------------------------------------------------


def _b64(data: bytes, mime: str) -> str:
    return f'data:{mime};base64,' + base64.b64encode(data).decode('ascii')


def _img(uri: str, alt: str, cls: str = '') -> str:
    c = f' class="{cls}"' if cls else ''
    return f'<img src="{uri}" alt="{_esc(alt)}"{c}>'


def _why(text: str) -> str:
    return f'<p class="missing">{_esc(text)}</p>'


def _new_figure(w: float = 6.0, h: float = 4.2):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=100, constrained_layout=True)  # works on matplotlib 3.1 .. 3.11
    FigureCanvasAgg(fig)
    return fig


def _fig_png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format='png', metadata={'Software': None})
    return _b64(buf.getvalue(), 'image/png')


def _finite(v: Any) -> float | None:
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(float(v)):
        return float(v)
    return None


def _curves_missing(curves: Curves | None, pixel: Mapping, what: str) -> str | None:
    """Why a curve figure cannot be drawn, or None if it can."""
    note = _note_of(pixel)
    if curves is None:
        return f'No {what}: no curve data was passed to the report (curves not computed for this run).' + (
            f' Pixel metrics note: {note}.' if note else ''
        )
    arrays = (
        (curves.tpr, curves.fpr, curves.precision)
        if what != 'score histogram'
        else (curves.hist_edges, curves.hist_anomaly, curves.hist_in_dist)
    )
    if any(np.asarray(a).size == 0 for a in arrays):
        reason = note or 'the run has no anomaly pixel or no in-distribution pixel, so the curve is undefined'
        return f'No {what}: {reason}.'
    return None


def _fig_pr(curves: Curves, pixel: Mapping) -> str:
    recall = np.asarray(curves.tpr, float)
    precision = np.asarray(curves.precision, float)
    ap = _finite(pixel.get('ap'))
    fig = _new_figure()
    ax = fig.add_subplot()
    ax.plot(recall, precision, color='#1f5fa8', lw=1.8, label=f'AP = {ap:.4g}' if ap is not None else 'AP = \u2014')
    n_pos, n_neg = _finite(pixel.get('n_pos')), _finite(pixel.get('n_neg'))
    if n_pos and n_neg is not None:
        base = n_pos / (n_pos + n_neg)
        ax.axhline(base, color='grey', ls='--', lw=1, label=f'chance (anomaly fraction {base:.3g})')
    ax.set(xlabel='recall (TPR)', ylabel='precision', title='Precision-recall', xlim=(0, 1), ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(loc='lower left')
    return _fig_png(fig)


def _fig_roc(curves: Curves, pixel: Mapping) -> str:
    tpr = np.asarray(curves.tpr, float)
    fpr = np.asarray(curves.fpr, float)
    auroc = _finite(pixel.get('auroc'))
    fig = _new_figure()
    ax = fig.add_subplot()
    ax.plot(fpr, tpr, color='#1f5fa8', lw=1.8, label=f'AUROC = {auroc:.4g}' if auroc is not None else 'AUROC = \u2014')
    ax.plot([0, 1], [0, 1], color='grey', ls='--', lw=1, label='chance')
    hit = np.flatnonzero(tpr >= FPR95_TPR)
    if hit.size:
        i = int(hit[0])
        fpr95 = _finite(pixel.get('fpr95'))
        shown = fpr95 if fpr95 is not None else float(fpr[i])
        ax.plot(
            [fpr[i]], [tpr[i]], 'o', color='#d62728', ms=7, zorder=5, label=f'FPR95 = {shown:.4g} (TPR {tpr[i]:.3f})'
        )
        ax.axhline(FPR95_TPR, color='#d62728', ls=':', lw=0.8)
    ax.set(xlabel='false positive rate', ylabel='true positive rate', title='ROC', xlim=(0, 1), ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(loc='lower right')
    return _fig_png(fig)


def _fig_hist(curves: Curves) -> str:
    edges = np.asarray(curves.hist_edges, float)
    widths = np.diff(edges)
    widths = np.where(widths > 0, widths, 1.0)
    fig = _new_figure(12.0, 3.8)  # ~ the page width at 100 dpi: no upscaled, oversized text
    ax = fig.add_subplot()
    densities = []
    for counts, label, colour in (
        (curves.hist_in_dist, 'in-distribution (gt 0)', '#1f77b4'),
        (curves.hist_anomaly, 'anomaly (gt 1)', '#d62728'),
    ):
        counts = np.asarray(counts, float)
        total = counts.sum()
        if total <= 0:
            continue
        density = counts / (total * widths)
        densities.append(density)
        ax.stairs(density, edges, color=colour, lw=1.6, label=f'{label}, {int(round(total))} px')
        ax.stairs(density, edges, color=colour, alpha=0.12, fill=True)
    positive = np.concatenate([d[d > 0] for d in densities]) if densities else np.zeros(0)
    log_y = positive.size > 0 and positive.max() / positive.min() > 1e3
    if log_y:
        ax.set_yscale('log')
    ax.set(
        xlabel='anomaly score (pixels of the evaluated frames; binned)',
        ylabel='density' + (' (log scale)' if log_y else ''),
        title='Score distribution: in-distribution vs anomaly pixels',
    )
    ax.grid(alpha=0.3)
    ax.legend(loc='upper left', bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return _fig_png(fig)


def _status_kind(status: str) -> str:
    s = status.strip().lower()
    if s == 'ok':
        return 'ok'
    if s.startswith('dropped'):
        return 'dropped'
    if s.startswith('late'):
        return 'late'
    if s.startswith('skipped'):
        return 'skipped'
    return 'other'


def _latency_missing(frames: Sequence[FrameRecord]) -> str | None:
    if not frames:
        return 'No latency plot: the run has no frame records.'
    if not any(_finite(f.latency_ms) is not None for f in frames):
        kinds = {_status_kind(f.status) for f in frames}
        if kinds == {'skipped'}:
            return f'No latency plot: all {len(frames)} frames were skipped.'
        return f'No latency plot: none of the {len(frames)} frames has a latency.'
    return None


def _fig_latency(frames: Sequence[FrameRecord]) -> str:
    timed = [(f.index, ms) for f in frames if (ms := _finite(f.latency_ms)) is not None]
    idx = np.array([t[0] for t in timed], float)
    lat = np.array([t[1] for t in timed], float)
    fig = _new_figure(12.0, 3.8)
    ax = fig.add_subplot()
    kinds = {id(f): _status_kind(f.status) for f in frames}
    ok = np.array([kinds[id(f)] != 'late' for f in frames if _finite(f.latency_ms) is not None])
    ax.plot(idx[ok], lat[ok], '.', ms=4 if len(lat) > 300 else 6, color='#1f5fa8', label='frame latency')
    if (~ok).any():
        ax.plot(idx[~ok], lat[~ok], '^', ms=6, color='#ff7f0e', label='late (latency)')
    p50, p95 = np.percentile(lat, [50, 95])
    ax.axhline(p50, color='#2ca02c', lw=1.2, label=f'p50 = {p50:.4g} ms')
    ax.axhline(p95, color='#d62728', lw=1.2, ls='--', label=f'p95 = {p95:.4g} ms')
    # frames without a latency (dropped / late / skipped) as ticks along the bottom edge
    bottom = ax.get_xaxis_transform()
    for kind, marker, colour, y in (
        ('dropped', 'x', '#d62728', 0.03),
        ('late', 'v', '#ff7f0e', 0.08),
        ('skipped', '|', '#7f7f7f', 0.13),
    ):
        xs = [f.index for f in frames if kinds[id(f)] == kind and _finite(f.latency_ms) is None]
        if xs:
            ax.plot(
                xs,
                [y] * len(xs),
                marker,
                color=colour,
                ms=6,
                transform=bottom,
                clip_on=False,
                label=f'{kind} ({len(xs)}, no latency)',
            )
    ax.set_ylim(bottom=0, top=max(lat.max(), p95) * 1.12 if lat.max() > 0 else 1.0)
    ax.set(xlabel='frame index', ylabel='latency (ms)', title='Latency over time')
    ax.grid(alpha=0.3)
    ax.legend(loc='upper left', bbox_to_anchor=(1.01, 1.0), borderaxespad=0, fontsize='small')
    return _fig_png(fig)


def _figure_block(title: str, make, missing: str | None, name: str, wide: bool = False) -> str:
    """One figure (or the sentence why not); any drawing error is reported in place, not raised."""
    if missing is None:
        try:
            body = _img(make(), title)
        except ImportError as exc:
            body = _why(f'Figure not drawn: matplotlib is not installed ({exc}); pip install matplotlib.')
        except Exception as exc:  # a broken figure must not lose the rest of the report
            log.warning('report figure %s failed: %s', name, exc, exc_info=True)
            body = _why(f'Figure not drawn: {type(exc).__name__}: {exc}')
    else:
        body = _why(missing)
    cls = 'fig wide' if wide else 'fig'
    return f'<figure class="{cls}"><figcaption>{_esc(title)}</figcaption>{body}</figure>'


# ---------------------------------------------------------------------------------------------------
# Worst frames.
# ---------------------------------------------------------------------------------------------------


def _as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.dtype != np.uint8:
        if np.issubdtype(img.dtype, np.floating) and img.size and float(np.nanmax(img)) <= 1.0:
            img = img * 255.0
        img = np.clip(np.nan_to_num(img), 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = np.ascontiguousarray(img[:, :, :3])
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f'image must be RGB HxWx3, got shape {img.shape}')
    return img


def _target_size(w: int, h: int) -> tuple[int, int]:
    if w <= MAX_IMAGE_WIDTH:
        return w, h
    return MAX_IMAGE_WIDTH, max(1, round(h * MAX_IMAGE_WIDTH / w))


def _encode(rgb: np.ndarray, fmt: str) -> str:
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if fmt == 'jpeg':
        ok, buf = cv2.imencode('.jpg', bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        mime = 'image/jpeg'
    else:
        ok, buf = cv2.imencode('.png', bgr, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        mime = 'image/png'
    if not ok:
        raise ValueError(f'cv2 could not encode a {rgb.shape} image as {fmt}')
    return _b64(buf.tobytes(), mime)


def _worst_images(w: WorstFrame) -> tuple[str, str, str]:
    """(image with GT contour, GT mask, heatmap) as data URIs, each at most MAX_IMAGE_WIDTH wide."""
    rgb = _as_rgb_uint8(w.image)
    gt = np.asarray(w.anomaly_gt)
    score = np.asarray(w.score, dtype=np.float32)
    if gt.shape != rgb.shape[:2] or score.shape != rgb.shape[:2]:
        raise ValueError(f'image {rgb.shape[:2]}, anomaly_gt {gt.shape} and score {score.shape} differ in size')
    h, w_ = gt.shape
    size = _target_size(w_, h)
    small = rgb if size == (w_, h) else cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    gt_small = gt if size == (w_, h) else cv2.resize(gt.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)

    # 1. camera image, ignore region greyed and hatched, GT anomaly contour in green
    annotated = small.copy()
    ignore = gt_small == ANOMALY_IGNORE
    if ignore.any():
        yy, xx = np.mgrid[0 : size[1], 0 : size[0]]
        hatch = ((xx + yy) % 10) < 2
        grey = (annotated.astype(np.float32) * 0.55 + 128 * 0.45).astype(np.uint8)
        annotated[ignore] = grey[ignore]
        annotated[ignore & hatch] = (96, 96, 96)
    contours, _ = cv2.findContours(
        (gt_small == ANOMALY_ID).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    thickness = 2 if size[0] >= 320 else 1
    cv2.drawContours(annotated, contours, -1, (0, 255, 0), thickness, lineType=cv2.LINE_AA)

    # 2. GT mask: 0 black, 1 white, 255 grey (anything else magenta: should not happen)
    lut = np.zeros((256, 3), np.uint8)
    lut[:] = (255, 0, 255)
    lut[0] = (0, 0, 0)
    lut[ANOMALY_ID] = (255, 255, 255)
    lut[ANOMALY_IGNORE] = (128, 128, 128)
    mask = lut[gt_small.astype(np.uint8)]

    # 3. heatmap over the full-resolution frame (scores never interpolated), then downscaled
    lo, hi = (float(v) for v in w.score_range)
    if np.isnan(score).any():  # NaN has no colour: show it as the lowest score
        score = np.where(np.isnan(score), np.float32(lo if math.isfinite(lo) else np.nanmin(score)), score)
    heat = cv2.cvtColor(heatmap_overlay(rgb, score, (lo, hi)), cv2.COLOR_BGR2RGB)
    if size != (w_, h):
        heat = cv2.resize(heat, size, interpolation=cv2.INTER_AREA)
    return _encode(annotated, 'jpeg'), _encode(mask, 'png'), _encode(heat, 'jpeg')


def _worst_block(worst: Sequence[WorstFrame]) -> str:
    if not worst:
        return _why('No worst frames were selected for this run.')
    rows = []
    for i, w in enumerate(worst, 1):
        head = (
            f'<div class="wf-head"><span class="wf-n">#{i}</span> <b>{_esc(w.name)}</b> '
            f'<span class="wf-why">{_esc(w.why)}</span></div>'
        )
        try:
            img, mask, heat = _worst_images(w)
        except Exception as exc:  # noqa: BLE001 - one bad frame must not lose the whole report
            log.warning('worst frame %r not drawn: %s', w.name, exc)
            rows.append(f'<div class="wf">{head}{_why(f"Not drawn: {type(exc).__name__}: {exc}")}</div>')
            continue
        try:
            lo, hi = (float(v) for v in w.score_range)
            rng = f'score range [{lo:g}, {hi:g}]'
        except (TypeError, ValueError):
            rng = 'score range ?'
        cells = ''.join(
            f'<figure>{_img(uri, f"{w.name}: {cap}")}<figcaption>{_esc(cap)}</figcaption></figure>'
            for uri, cap in (
                (img, 'image + ground-truth anomaly contour (green); ignore hatched'),
                (mask, 'ground truth: black in-distribution, white anomaly, grey ignore'),
                (heat, f'anomaly score (TURBO: blue low \u2192 red high), {rng}'),
            )
        )
        rows.append(f'<div class="wf">{head}<div class="wf-row">{cells}</div></div>')
    return ''.join(rows)


# ---------------------------------------------------------------------------------------------------
# Headline and per-frame table.
# ---------------------------------------------------------------------------------------------------


def _card(label: str, value: Any, sub: str = '', bad: bool = False) -> str:
    cls = 'card bad' if bad else 'card'
    return (
        f'<div class="{cls}"><div class="label">{_esc(label)}</div><div class="big">{_fmt_num(value)}</div>'
        f'<div class="sub">{sub}</div></div>'
    )


def _frame_counts(frames: Sequence[FrameRecord]) -> dict[str, int]:
    counts = {'ok': 0, 'dropped': 0, 'late': 0, 'skipped': 0, 'other': 0}
    for f in frames:
        counts[_status_kind(f.status)] += 1
    return counts


def _headline(report: Mapping, frames: Sequence[FrameRecord]) -> str:
    pixel = report.get('pixel')
    if not isinstance(pixel, Mapping):
        pixel = {}
    note = _note_of(pixel)
    cards = []

    def metric(label: str, key: str, sub: str) -> None:
        v = pixel.get(key)
        v = _finite(v) if v is not None else None
        bound = _finite(pixel.get(f'{key}_error_bound'))
        extra = f'\u00b1 {bound:.2g} (binning bound); ' if bound else ''
        if v is None:
            cards.append(_card(label, None, _esc(note or 'not computed'), bad=True))
        else:
            cards.append(_card(label, v, _esc(extra + sub)))

    n_pos, n_neg = pixel.get('n_pos'), pixel.get('n_neg')
    px = f'{n_pos} anomaly / {n_neg} in-dist px' if n_pos is not None else 'pixel-level, pooled'
    metric('AP', 'ap', f'higher is better; {px}')
    metric('FPR95', 'fpr95', 'FPR at 95 % TPR; lower is better')
    metric('AUROC', 'auroc', 'higher is better')
    seg = report.get('segmentation')
    if isinstance(seg, Mapping) and 'miou' in seg:
        miou = _finite(seg.get('miou'))
        cards.append(
            _card(
                'mIoU',
                miou,
                _esc('segmentation, dataset-wide' if miou is not None else (_note_of(seg) or 'undefined')),
                bad=miou is None,
            )
        )
    counts = _frame_counts(frames)
    if frames:
        parts = [f'{counts["ok"]} ok']
        parts += [f'{counts[k]} {k}' for k in ('late', 'skipped', 'other') if counts[k]]
        cards.append(_card('frames', len(frames), _esc(', '.join(parts)), bad=counts['ok'] == 0))
        dropped: int | None = counts['dropped']
    else:
        ev = report.get('evaluated')
        if not isinstance(ev, Mapping):
            ev = {}
        n = next((ev[k] for k in ('frames', 'n_frames', 'frame_count') if k in ev), None)
        cards.append(_card('frames', n, 'no frame records', bad=True))
        lat = report.get('latency')
        if not isinstance(lat, Mapping):
            lat = {}
        dropped = lat.get('dropped')
    cards.append(_card('dropped', dropped, 'messages the node dropped', bad=bool(dropped)))
    return f'<div class="cards">{"".join(cards)}</div>'


def _frames_table(frames: Sequence[FrameRecord]) -> str:
    if not frames:
        return _why('No frame records: the run evaluated zero frames.')
    shown = frames[:MAX_FRAME_ROWS]
    rows = []
    for f in shown:
        kind = _status_kind(f.status)
        stages = ', '.join(
            f'{k} {_finite(v):.3g} ms' if _finite(v) is not None else f'{k} ?' for k, v in (f.stage_ms or {}).items()
        )
        lat = _fmt_num(_finite(f.latency_ms))
        lat_cell = f'<td title="{_esc(stages)}">{lat}</td>' if stages else f'<td>{lat}</td>'
        rows.append(
            f'<tr class="st-{kind}"><td>{_fmt_num(f.index)}</td><td class="name">{_esc(f.name)}</td>'
            f'<td>{_esc(f.status)}</td><td>{_fmt_num(f.n_anomaly_px)}</td><td>{_fmt_num(f.n_in_dist_px)}</td>'
            f'<td>{_fmt_num(_finite(f.ap))}</td><td>{_fmt_num(_finite(f.mean_score_anomaly))}</td>'
            f'<td>{_fmt_num(_finite(f.mean_score_in_dist))}</td>{lat_cell}</tr>'
        )
    more = ''
    if len(frames) > MAX_FRAME_ROWS:
        more = (
            f'<p class="missing">Showing the first {MAX_FRAME_ROWS} of {len(frames)} frames; '
            f'the remaining {len(frames) - MAX_FRAME_ROWS} are left out of this page.</p>'
        )
    head = (
        '<tr><th>index</th><th>name</th><th>status</th><th>anomaly px</th><th>in-dist px</th><th>AP</th>'
        '<th>mean score (anomaly)</th><th>mean score (in-dist)</th><th>latency ms</th></tr>'
    )
    return (
        f'{more}<table class="grid frames"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'
        f'<p class="note">Frame AP is each frame\'s own AP ({DASH} when the frame has no anomaly pixel or was '
        f'not evaluated); the headline AP pools every pixel of the run. Hover a latency for its stages.</p>'
    )


# ---------------------------------------------------------------------------------------------------
# Page.
# ---------------------------------------------------------------------------------------------------

_CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f4f5f7;color:#1d2330;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,
"Helvetica Neue",Arial,sans-serif}
main{max-width:1280px;margin:0 auto;padding:20px 24px 60px}
h1{font-size:24px;margin:4px 0 2px}
h2{font-size:18px;margin:28px 0 10px;padding-bottom:4px;border-bottom:2px solid #d5d9e0}
h3{font-size:15px;margin:18px 0 6px}
h4{font-size:13px;margin:12px 0 4px;color:#444}
.gen{color:#667;font-size:12px}
.evaluated{background:#fff8e1;border:2px solid #f0b400;border-radius:8px;padding:12px 16px;margin:14px 0}
.evaluated h2{margin-top:0;border:none}
table{border-collapse:collapse;background:#fff;margin:4px 0 10px}
table.kv th,table.kv td,table.grid th,table.grid td{border:1px solid #dde1e7;padding:3px 8px;text-align:left;
vertical-align:top}
table.kv th{background:#f0f2f5;font-weight:600;white-space:nowrap;font-family:ui-monospace,Menlo,Consolas,monospace;
font-size:12.5px}
table.kv td{word-break:break-word;max-width:900px}
.evaluated table.kv{width:100%}
.evaluated table.kv th{width:1%;background:#fff3c4}
table.grid thead th{background:#e8ebf0;position:sticky;top:0}
table.grid td{font-variant-numeric:tabular-nums}
table caption{text-align:left;font-weight:600;padding:2px 0}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:14px 0}
.card{flex:1 1 150px;background:#fff;border:1px solid #d5d9e0;border-radius:8px;padding:10px 14px}
.card .label{font-size:13px;font-weight:600;letter-spacing:.03em;color:#556}
.card .big{font-size:30px;font-weight:700;line-height:1.2;font-variant-numeric:tabular-nums}
.card .sub{font-size:11.5px;color:#667}
.card.bad{border-color:#e0a0a0;background:#fff6f6}
.figs{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:14px;margin-bottom:14px}
figure{margin:0}
figure.fig{background:#fff;border:1px solid #d5d9e0;border-radius:8px;padding:8px}
figure.fig.wide{grid-column:1/-1}
figure.fig figcaption{font-weight:600;margin-bottom:4px}
figure.fig img{max-width:100%;height:auto;display:block;margin:0 auto}
.missing{background:#fff;border-left:4px solid #c77;padding:8px 12px;margin:6px 0;color:#633}
.na{color:#999}
.note{color:#666;font-size:12px}
.section{background:#fff;border:1px solid #d5d9e0;border-radius:8px;padding:8px 14px;margin:10px 0;overflow-x:auto}
.wf{background:#fff;border:1px solid #d5d9e0;border-radius:8px;padding:8px 10px;margin:10px 0}
.wf-head{margin-bottom:6px;word-break:break-all}
.wf-n{color:#889}
.wf-why{color:#a33;margin-left:8px}
.wf-row{display:grid;grid-template-columns:repeat(3,1fr);gap:8px}
.wf-row img{width:100%;height:auto;display:block;image-rendering:auto;border:1px solid #ccc}
.wf-row figcaption{font-size:11.5px;color:#556}
.frames-wrap{max-height:700px;overflow:auto;border:1px solid #d5d9e0;border-radius:6px;background:#fff}
table.frames{margin:0;font-size:12.5px;width:100%}
table.frames td.name{word-break:break-all;max-width:360px}
tr.st-dropped td{background:#fde8e8}
tr.st-late td{background:#fff2dc}
tr.st-skipped td,tr.st-other td{background:#f0f0f0;color:#666}
@media print{.frames-wrap{max-height:none;overflow:visible}table.grid thead th{position:static}}
"""


def write_html_report(
    report: dict,
    curves: Curves | None,
    frames: list[FrameRecord],
    worst: list[WorstFrame],
    path: Path,
    *,
    title: str = 'anomaly_seg_ros evaluation',
) -> None:
    """Write the self-contained HTML page for ``report`` (see the module docstring for the layout)."""
    data = to_jsonable(report, keep_nonfinite=True) if report is not None else {}
    if not isinstance(data, dict):
        raise TypeError(f'report must be a dict, got {type(report).__name__}')
    frames = list(frames or [])
    worst = list(worst or [])
    pixel = data.get('pixel')
    if not isinstance(pixel, dict):
        pixel = {}

    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<title>{_esc(title)}</title><style>{_CSS}</style></head><body><main>',
        f'<h1>{_esc(title)}</h1>',
        f'<div class="gen">generated {datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")} '
        f'by anomaly_seg_ros.eval.report</div>',
    ]

    # 1. what was evaluated
    evaluated = data.get('evaluated')
    parts.append('<section class="evaluated"><h2>What was evaluated</h2>')
    if isinstance(evaluated, dict) and evaluated:
        parts.append(_kv_table(_flatten(evaluated)))
    elif evaluated:
        parts.append(_kv_table([('evaluated', evaluated, '')]))
    else:
        parts.append(_why("The report has no 'evaluated' block: what was evaluated is unknown."))
    parts.append('</section>')

    # 2. headline
    parts.append(_headline(data, frames))
    if _note_of(pixel):
        parts.append(f'<p class="note">Pixel metrics note: {_esc(_note_of(pixel))}</p>')

    # 3. figures; _figure_block calls a maker only when _curves_missing() returned None, so curves is set there
    drawn = cast(Curves, curves)
    parts.append('<h2>Figures</h2><div class="figs">')
    parts.append(
        _figure_block(
            'Precision-recall curve',
            lambda: _fig_pr(drawn, pixel),
            _curves_missing(curves, pixel, 'precision-recall curve'),
            'pr',
        )
    )
    parts.append(
        _figure_block('ROC curve', lambda: _fig_roc(drawn, pixel), _curves_missing(curves, pixel, 'ROC curve'), 'roc')
    )
    parts.append('</div><div class="figs">')
    parts.append(
        _figure_block(
            'In-distribution vs anomaly scores',
            lambda: _fig_hist(drawn),
            _curves_missing(curves, pixel, 'score histogram'),
            'hist',
            wide=True,
        )
    )
    parts.append(
        _figure_block('Latency over time', lambda: _fig_latency(frames), _latency_missing(frames), 'latency', wide=True)
    )
    parts.append('</div>')

    # 4. every other section
    for key, value in data.items():
        if key == 'evaluated':
            continue
        parts.append(f'<h2>{_esc(key)}</h2><div class="section">{_section_body(value)}</div>')

    # 5. worst frames
    parts.append(f'<h2>Worst frames ({len(worst)})</h2>')
    parts.append(_worst_block(worst))

    # 6. per-frame table
    parts.append(f'<h2>Frames ({len(frames)})</h2>')
    table = _frames_table(frames)
    parts.append(f'<div class="frames-wrap">{table}</div>' if frames else table)

    parts.append('</main></body></html>\n')
    _atomic_write(Path(path), ''.join(parts))
