"""emaudit: measure emergent misalignment honestly.

The core package holds what the components share: settings, the SQLModel store and the CLI.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
