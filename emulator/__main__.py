"""``python -m emulator``: the local Dataloop platform alone (see :mod:`emulator.serve`)."""

import sys

from emulator.serve import main

if __name__ == "__main__":
    sys.exit(main())
