"""The report's matplotlib figures: PR and ROC curves, the score histogram, latency over time, as PNG data URIs.

matplotlib is imported lazily and used without pyplot (``Figure`` + ``FigureCanvasAgg``): no global backend
state is touched, and the rest of the package does not need it. A figure that cannot be drawn (no curve
data, no anomaly pixel, no latency, matplotlib missing, a drawing error) becomes a sentence saying why.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...metrics.pixel import FPR95_TPR, Curves
from ..records import FrameRecord
from .values import data_uri, finite, note_of, status_kind

__all__ = ['FigureView', 'figure_views']

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FigureView:
    """One figure of the page: a PNG data URI, or the sentence why it is not there."""

    title: str
    uri: str | None
    missing: str | None
    wide: bool = False


def _new_figure(w: float = 6.0, h: float = 4.2) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=100, constrained_layout=True)  # works on matplotlib 3.1 .. 3.11
    FigureCanvasAgg(fig)
    return fig


def _fig_png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format='png', metadata={'Software': None})
    return data_uri(buf.getvalue(), 'image/png')


def curves_missing(curves: Curves | None, pixel: Mapping, what: str) -> str | None:
    """Why a curve figure cannot be drawn, or None if it can."""
    note = note_of(pixel)
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


def latency_missing(frames: Sequence[FrameRecord]) -> str | None:
    """Why the latency plot cannot be drawn, or None if it can."""
    if not frames:
        return 'No latency plot: the run has no frame records.'
    if not any(finite(f.latency_ms) is not None for f in frames):
        kinds = {status_kind(f.status) for f in frames}
        if kinds == {'skipped'}:
            return f'No latency plot: all {len(frames)} frames were skipped.'
        if kinds <= {'skipped', 'failed'}:
            return f'No latency plot: all {len(frames)} frames were skipped or failed.'
        return f'No latency plot: none of the {len(frames)} frames has a latency.'
    return None


def fig_pr(curves: Curves, pixel: Mapping) -> str:
    recall = np.asarray(curves.tpr, float)
    precision = np.asarray(curves.precision, float)
    ap = finite(pixel.get('ap'))
    fig = _new_figure()
    ax = fig.add_subplot()
    ax.plot(recall, precision, color='#1f5fa8', lw=1.8, label=f'AP = {ap:.4g}' if ap is not None else 'AP = \u2014')
    n_pos, n_neg = finite(pixel.get('n_pos')), finite(pixel.get('n_neg'))
    if n_pos and n_neg is not None:
        base = n_pos / (n_pos + n_neg)
        ax.axhline(base, color='grey', ls='--', lw=1, label=f'chance (anomaly fraction {base:.3g})')
    ax.set(xlabel='recall (TPR)', ylabel='precision', title='Precision-recall', xlim=(0, 1), ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(loc='lower left')
    return _fig_png(fig)


def fig_roc(curves: Curves, pixel: Mapping) -> str:
    tpr = np.asarray(curves.tpr, float)
    fpr = np.asarray(curves.fpr, float)
    auroc = finite(pixel.get('auroc'))
    fig = _new_figure()
    ax = fig.add_subplot()
    ax.plot(fpr, tpr, color='#1f5fa8', lw=1.8, label=f'AUROC = {auroc:.4g}' if auroc is not None else 'AUROC = \u2014')
    ax.plot([0, 1], [0, 1], color='grey', ls='--', lw=1, label='chance')
    hit = np.flatnonzero(tpr >= FPR95_TPR)
    if hit.size:
        i = int(hit[0])
        fpr95 = finite(pixel.get('fpr95'))
        shown = fpr95 if fpr95 is not None else float(fpr[i])
        ax.plot(
            [fpr[i]], [tpr[i]], 'o', color='#d62728', ms=7, zorder=5, label=f'FPR95 = {shown:.4g} (TPR {tpr[i]:.3f})'
        )
        ax.axhline(FPR95_TPR, color='#d62728', ls=':', lw=0.8)
    ax.set(xlabel='false positive rate', ylabel='true positive rate', title='ROC', xlim=(0, 1), ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(loc='lower right')
    return _fig_png(fig)


def fig_hist(curves: Curves) -> str:
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


def fig_latency(frames: Sequence[FrameRecord]) -> str:
    timed = [(f.index, ms) for f in frames if (ms := finite(f.latency_ms)) is not None]
    idx = np.array([t[0] for t in timed], float)
    lat = np.array([t[1] for t in timed], float)
    fig = _new_figure(12.0, 3.8)
    ax = fig.add_subplot()
    kinds = {id(f): status_kind(f.status) for f in frames}
    ok = np.array([kinds[id(f)] != 'late' for f in frames if finite(f.latency_ms) is not None])
    ax.plot(idx[ok], lat[ok], '.', ms=4 if len(lat) > 300 else 6, color='#1f5fa8', label='frame latency')
    if (~ok).any():
        ax.plot(idx[~ok], lat[~ok], '^', ms=6, color='#ff7f0e', label='late (latency)')
    p50, p95 = np.percentile(lat, [50, 95])
    ax.axhline(p50, color='#2ca02c', lw=1.2, label=f'p50 = {p50:.4g} ms')
    ax.axhline(p95, color='#d62728', lw=1.2, ls='--', label=f'p95 = {p95:.4g} ms')
    # frames without a latency (dropped / late / skipped / failed) as ticks along the bottom edge
    bottom = ax.get_xaxis_transform()
    for kind, marker, colour, y in (
        ('dropped', 'x', '#d62728', 0.03),
        ('late', 'v', '#ff7f0e', 0.08),
        ('skipped', '|', '#7f7f7f', 0.13),
        ('failed', 'D', '#9467bd', 0.18),
    ):
        xs = [f.index for f in frames if kinds[id(f)] == kind and finite(f.latency_ms) is None]
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


def figure_view(title: str, make: Callable[[], str], missing: str | None, name: str, wide: bool = False) -> FigureView:
    """One figure (or the sentence why not); any drawing error is reported in place, not raised."""
    if missing is not None:
        return FigureView(title, None, missing, wide)
    try:
        return FigureView(title, make(), None, wide)
    except ImportError as exc:
        why = f'Figure not drawn: matplotlib is not installed ({exc}); pip install matplotlib.'
    except Exception as exc:  # a broken figure must not lose the rest of the report
        log.warning('report figure %s failed: %s', name, exc, exc_info=True)
        why = f'Figure not drawn: {type(exc).__name__}: {exc}'
    return FigureView(title, None, why, wide)


def figure_views(curves: Curves | None, pixel: Mapping, frames: Sequence[FrameRecord]) -> list[list[FigureView]]:
    """The page's figures in rows: [PR, ROC], [score histogram, latency over time]."""

    # a maker runs only when its *_missing() check returned None, so curves is set there
    def drawn() -> Curves:
        if curves is None:
            raise ValueError('no curve data')
        return curves

    return [
        [
            figure_view(
                'Precision-recall curve',
                lambda: fig_pr(drawn(), pixel),
                curves_missing(curves, pixel, 'precision-recall curve'),
                'pr',
            ),
            figure_view(
                'ROC curve', lambda: fig_roc(drawn(), pixel), curves_missing(curves, pixel, 'ROC curve'), 'roc'
            ),
        ],
        [
            figure_view(
                'In-distribution vs anomaly scores',
                lambda: fig_hist(drawn()),
                curves_missing(curves, pixel, 'score histogram'),
                'hist',
                wide=True,
            ),
            figure_view(
                'Latency over time', lambda: fig_latency(frames), latency_missing(frames), 'latency', wide=True
            ),
        ],
    ]
