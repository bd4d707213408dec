"""`python -m paless_deploy`: the same as the `paless-deploy` console script.

Kept tiny so that the import cost is the CLI's own.
"""

import sys

from paless_deploy.cli import main

sys.exit(main())
