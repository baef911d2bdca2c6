"""gpt2guard: staged release and machine-text detection for the GPT-2 model family.

The package is split in four parts (``generator``, ``detector``, ``release``,
``datasets``) over the shared model-family code in ``family``. Importing the
package is cheap: torch and transformers load only when a model is needed.
"""

__version__ = "0.1.0"

from gpt2guard.errors import GuardError

__all__ = ["GuardError", "__version__"]
