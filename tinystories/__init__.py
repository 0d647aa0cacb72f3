"""tinystories: the TinyStories research program (Eldan & Li, 2023) on the Hugging Face stack.

Train the paper's small GPT-Neo models on (synthetic) children's stories, from one CPU to many GPUs.
Submodules load lazily so that ``import tinystories`` stays cheap: ``tinystories.models``, ``tinystories.train``,
``tinystories.data``, ``tinystories.tokenization``.
"""

__version__ = "0.1.0.dev0"
