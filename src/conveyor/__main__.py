"""``python -m conveyor``: what the supervisor runs in its children, so they use the very
interpreter (and virtualenv) of the parent even when no ``conveyor`` script is on PATH."""

from conveyor.cli.main import main

if __name__ == "__main__":
    main()
