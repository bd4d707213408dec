"""`python3 -m paless_sandbox.realstack`: ensure (the default), images, dns."""

from __future__ import annotations

import sys

from paless_sandbox.realstack.cli import main

sys.exit(main(sys.argv[1:]))
