"""`anomaly-seg <command>`: the command line, one module per subcommand (`main` is the console script)."""

from .main import COMMANDS, build_parser, main

__all__ = ['COMMANDS', 'build_parser', 'main']
