"""Evaluation reports: every number as JSON (report.json), and one self-contained HTML page for people.

``write_json_report(report, path)`` writes the nested ``report`` dict as strict JSON (see ``json_report``).
``write_html_report(report, curves, frames, worst, path)`` renders the page from a Jinja2 template (see ``html``):
figures come from ``figures``, worst-frame images from ``worst_frames``, tables from ``tables``.
"""

from ..records import FrameRecord, WorstFrame
from .html import MAX_FRAME_ROWS, render_html_report, write_html_report
from .json_report import to_jsonable, write_json_report
from .worst_frames import MAX_IMAGE_WIDTH

__all__ = [
    'MAX_FRAME_ROWS',
    'MAX_IMAGE_WIDTH',
    'FrameRecord',
    'WorstFrame',
    'render_html_report',
    'to_jsonable',
    'write_html_report',
    'write_json_report',
]
