"""asyncssh, imported once for the transport (``ssh.py`` and ``ssh_config.py`` take it from here).

asyncssh 2.24 touches cryptography's DSA classes while it is imported (an annotation in
``asyncssh/crypto/dsa.py``), and cryptography 51 deprecates DSA with a warning on that access:
every command that connects would print it, and the tests (warnings are errors) would fail on a
new machine. orchestrator never offers or accepts DSA (ssh-dss) keys on its own; the warning is
about asyncssh's import, so it is silenced for that import alone, by its exact message.
"""

from __future__ import annotations

import warnings

from cryptography.utils import CryptographyDeprecationWarning

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "DSA is deprecated", CryptographyDeprecationWarning)
    import asyncssh

__all__ = ["asyncssh"]
