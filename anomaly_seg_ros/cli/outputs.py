"""The `--out` folder of a command, checked before the run: not a file, no earlier results replaced, writable.

A long run that fails at its last step (writing) loses the run; one that silently writes over an earlier
report or model loses that. So each command calls :func:`prepare_out_dir` before any work: it refuses a
folder that already holds one of the command's outputs unless ``--overwrite`` is given, creates the folder
and writes (then removes) a probe file in it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..errors import ConfigError

__all__ = ['existing_outputs', 'prepare_out_dir', 'prepare_out_file']

PROBE_PREFIX = '.anomaly-seg-write-test-'


def existing_outputs(out: Path, names: Sequence[str]) -> list[str]:
    """Which of ``names`` already exist inside ``out`` (empty when ``out`` does not exist)."""
    return [name for name in names if (out / name).exists()]


def prepare_out_dir(out: Path, outputs: Sequence[str], *, overwrite: bool, command: str) -> None:
    """Make ``out`` a writable folder, or raise ConfigError naming the path; nothing existing is touched.

    ``outputs`` are the file names the command writes into ``out``: if any exists and ``overwrite`` is False,
    the run is refused before anything is written.
    """
    if out.exists() and not out.is_dir():
        raise ConfigError(f'{command}: --out {out} is a file, not a folder')
    if not overwrite:
        clash = existing_outputs(out, outputs)
        if clash:
            raise ConfigError(
                f'{command}: --out {out} already holds {", ".join(clash)}; pass --overwrite to replace '
                'them, or choose another folder (nothing was written)'
            )
    _create_and_probe(out, f'{command}: cannot create --out {out}', f'{command}: --out {out} is not writable')


def _create_and_probe(folder: Path, cannot_create: str, not_writable: str) -> None:
    """Make `folder` and write-and-remove a probe file in it; ConfigError with the given prefix on failure."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f'{cannot_create}: {e.strerror or e}') from None
    try:
        fd, probe = tempfile.mkstemp(prefix=PROBE_PREFIX, dir=folder)
    except OSError as e:
        raise ConfigError(f'{not_writable}: {e.strerror or e}') from None
    os.close(fd)
    os.unlink(probe)


def prepare_out_file(path: Path, *, overwrite: bool, command: str, option: str = '--out') -> None:
    """Refuse an existing file (unless overwrite) or a folder at `path`, create its folder and probe that it is
    writable; ConfigError names the path. Nothing existing is touched."""
    if path.is_dir():
        raise ConfigError(f'{command}: {option} {path} is a folder; give a file name')
    if path.exists() and not overwrite:
        raise ConfigError(
            f'{command}: {option} {path} already exists; pass --overwrite to replace it, or choose another '
            'name (nothing was written)'
        )
    folder = path.parent
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f'{command}: {option} {path}: {folder} is a file, not a folder')
    _create_and_probe(
        folder,
        f'{command}: cannot create the folder of {option} {path}',
        f'{command}: {option} {path}: {folder} is not writable',
    )
