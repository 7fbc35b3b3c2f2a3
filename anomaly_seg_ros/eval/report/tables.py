"""One report section as tables, generic over its shape (key/value tables, record matrices, lists of records).

The result is a flat list of blocks (a heading, a key/value table, a record table, a note) that the
template draws in order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .values import Cell, format_cell, is_scalar, note_of

__all__ = [
    'MAX_LIST_ROWS',
    'Block',
    'Heading',
    'KvTable',
    'Note',
    'RecordTable',
    'flatten',
    'kv_table',
    'section_blocks',
]

#: record / skipped tables (lists of dicts) show at most this many rows.
MAX_LIST_ROWS = 2000


@dataclass(frozen=True)
class KvTable:
    """Key/value table: one row per (dotted) key."""

    rows: tuple[tuple[str, Cell], ...]
    kind: Literal['kv'] = 'kv'


@dataclass(frozen=True)
class RecordRow:
    name: str | None  # the row's header cell (matrix tables), None for plain lists of records
    cells: tuple[Cell | None, ...]  # None: the record has no such key


@dataclass(frozen=True)
class RecordTable:
    """One row per record (dict of scalars), one column per key in first-seen order."""

    row_key: str | None  # header of the row-name column; None: no such column
    columns: tuple[str, ...]
    rows: tuple[RecordRow, ...]
    more: str = ''  # 'showing the first N of M rows ...' when capped
    kind: Literal['records'] = 'records'


@dataclass(frozen=True)
class Heading:
    text: str
    kind: Literal['heading'] = 'heading'


@dataclass(frozen=True)
class Note:
    text: str
    kind: Literal['note'] = 'note'


Block = KvTable | RecordTable | Heading | Note


def flatten(d: Mapping, prefix: str = '', note: str = '') -> list[tuple[str, Any, str]]:
    """(dotted key, value, note of the nearest dict holding it) for every leaf; lists stay whole."""
    rows: list[tuple[str, Any, str]] = []
    note = note_of(d) or note
    for k, v in d.items():
        key = f'{prefix}{k}'
        if isinstance(v, dict) and v:
            rows.extend(flatten(v, key + '.', note))
        elif k == 'note' and not v:
            continue  # an empty note says nothing
        else:
            rows.append((key, v, note))
    return rows


def kv_table(rows: Sequence[tuple[str, Any, str]]) -> KvTable:
    return KvTable(tuple((str(k), format_cell(v, note)) for k, v, note in rows))


def record_table(
    records: Sequence[Mapping], row_key: str | None = None, row_names: Sequence[str] | None = None
) -> RecordTable:
    """Table with one row per record (dict of scalars) and one column per key (first-seen order)."""
    cols: list[str] = []
    for r in records:
        for k in r:
            if k not in cols:
                cols.append(k)
    rows = []
    for i, r in enumerate(records[:MAX_LIST_ROWS]):
        note = note_of(r)
        cells = tuple(format_cell(r.get(c), note) if c in r else None for c in cols)
        rows.append(RecordRow(str(row_names[i]) if row_names is not None else None, cells))
    more = ''
    if len(records) > MAX_LIST_ROWS:
        more = f'showing the first {MAX_LIST_ROWS} of {len(records)} rows (all are in the JSON report)'
    return RecordTable(row_key if row_names is not None else None, tuple(str(c) for c in cols), tuple(rows), more=more)


def _is_record(v: Any) -> bool:
    return isinstance(v, dict) and bool(v) and all(is_scalar(x) for x in v.values())


def _is_record_list(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def section_blocks(obj: Any, prefix: str = '', inherited_note: str = '') -> list[Block]:
    """Blocks for one report section.

    - a dict's scalar / list leaves (nested dicts flattened to dotted keys) -> one key/value table;
    - two or more sibling dicts of scalars (e.g. latency stages -> {p50, p95, ...}) -> one matrix table;
    - a list of dicts (e.g. skipped messages) -> a table with one row per item.
    """
    if isinstance(obj, list):
        if _is_record_list(obj):
            return [record_table(obj)]
        return [kv_table([(prefix.rstrip('.') or 'value', obj, '')])]
    if not isinstance(obj, dict):
        return [kv_table([(prefix.rstrip('.') or 'value', obj, '')])]
    if not obj:
        return [Note('(empty)')]
    records = {k: v for k, v in obj.items() if _is_record(v)}
    n_cols = len({c for v in records.values() for c in v})
    as_matrix = len(records) >= 2 and n_cols <= 12
    kv_rows: list[tuple[str, Any, str]] = []
    extra: list[Block] = []
    note = note_of(obj) or inherited_note
    for k, v in obj.items():
        key = f'{prefix}{k}'
        if as_matrix and k in records:
            continue
        if _is_record_list(v):
            extra += [Heading(key), record_table(v)]
        elif isinstance(v, dict) and v:
            sub_records = [vv for vv in v.values() if _is_record(vv)]
            if len(sub_records) >= 2 or any(
                isinstance(vv, list) and vv and isinstance(vv[0], dict) for vv in v.values()
            ):
                extra += [Heading(key), *section_blocks(v, key + '.', note)]
            else:
                kv_rows.extend(flatten(v, key + '.', note))
        elif not (k == 'note' and not v):
            kv_rows.append((key, v, note))
    blocks: list[Block] = []
    if as_matrix:
        names = list(records)
        blocks.append(record_table([records[n] for n in names], row_key=prefix.rstrip('.') or '', row_names=names))
    if kv_rows:
        blocks.append(kv_table(kv_rows))
    return blocks + extra
