"""Evaluation runners on top of the Pipeline: offline replay, the accumulator that feeds every metric of
:mod:`anomaly_seg_ros.metrics`, the report (JSON + HTML) and the metric benchmark.

Submodules are imported where they are used (``eval.offline``, ``eval.accumulate``, ``eval.report``), so
importing ``eval.report`` never pulls torch and ``eval.accumulate`` never pulls the HTML code.
"""

__all__: list[str] = []
