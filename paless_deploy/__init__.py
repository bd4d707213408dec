"""paless-deploy: build, push and deploy the Paless stack in ordered, verified phases.

Only the version lives here; every stage is its own module, imported when needed.
"""

__version__ = "0.1.0"
