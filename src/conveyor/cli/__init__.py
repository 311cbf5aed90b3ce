"""The ``conveyor`` command line: ``conveyor.cli.main:main`` is the console script.

Each command group lives in its own module; :mod:`conveyor.cli.common` holds what they share
(loading ``MODULE:APP``, turning library errors into one-line messages and exit codes).
"""

from conveyor.cli.main import cli, main

__all__ = ["cli", "main"]
