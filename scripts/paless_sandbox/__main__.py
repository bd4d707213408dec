"""`python3 -m paless_sandbox ARGS` (what `scripts/sandbox ARGS` runs)."""

import sys

from paless_sandbox.cli import main

sys.exit(main(sys.argv[1:]))
