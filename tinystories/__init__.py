"""tinystories: the TinyStories research program (Eldan & Li, 2023) on the Hugging Face stack.

Generate TinyStories-style data with a teacher LLM (``tinystories.synth``), train the paper's small GPT-Neo models
(``tinystories.training``, ``tinystories.models``), grade them with GPT-Eval (``tinystories.evaluation`` and the
``evaluate`` module at ``tinystories.metrics.GPT_EVAL``), serve them (``tinystories.serving``) and publish them
(``tinystories.hub``). Importing ``tinystories`` itself loads nothing else.
"""

__version__ = "0.1.0.dev0"
