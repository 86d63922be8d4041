"""The ``jtorch`` command line (installed as ``jpegtorch.cli``).

Nothing here imports torch at import time: each command imports the library
inside its function, so ``jtorch --help`` stays instant.
"""
