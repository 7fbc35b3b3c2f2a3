"""The parser class of every `anomaly-seg` parser and subparser: help that shows each option's default."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing import TypeAlias

__all__ = ['CommandParser', 'HelpFormatter', 'Subparsers']


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Descriptions stay as written; each option's help ends with its default, spelled as it is typed.

    Skipped: options without a default (None), and help that already states its default in words.
    An argument type with a ``show(value) -> str`` method spells the default (``1024x512``, not ``(1024, 512)``).
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help
        default: Any = action.default
        if not text or not action.option_strings or default is None or default is argparse.SUPPRESS:
            return text
        if '%(default)' in text or '(default' in text:
            return text
        show = getattr(action.type, 'show', None)
        shown = show(default) if callable(show) else str(default)
        return f'{text} (default: {shown.replace("%", "%%")})'


class CommandParser(argparse.ArgumentParser):
    """ArgumentParser using HelpFormatter; `add_subparsers` makes subparsers of this class too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault('formatter_class', HelpFormatter)
        super().__init__(*args, **kwargs)


if TYPE_CHECKING:
    Subparsers: TypeAlias = argparse._SubParsersAction[CommandParser]
