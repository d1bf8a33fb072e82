"""The local dev deployment: this project's Convex functions on the convex-test engine.

It is an emulator of a Convex deployment for tests, demos and development, not the Convex backend.
"""

from ._deployment import LocalDeployment
from ._runtime import find_node, functions_dir

__all__ = ["LocalDeployment", "find_node", "functions_dir"]
