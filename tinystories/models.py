"""The TinyStories GPT-Neo models (the public face of ``tinystories.modeling``).

``PRESETS`` holds the released ``roneneldan/TinyStories-*`` models' exact shapes, ``tinystories_config(name,
**overrides)`` makes a ``GPTNeoConfig`` of one, ``build_model(config)`` a fresh ``GPTNeoForCausalLM`` and
``load_model(name_or_path)`` a trained one, ready to generate; both use this package's exact, faster attention
unless ``attn_implementation="eager"``.
"""

from . import modeling
from .modeling import *  # noqa: F403  (the same names, under the name users know)

__all__ = modeling.__all__
