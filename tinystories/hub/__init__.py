"""Publishing to the Hugging Face Hub: model, dataset and metric cards rendered from ``hub_cards/``, and
``tinystories push {model,dataset,metric}``. How and why: docs/hub.md."""

from .cli import main
from .dataset_card import dataset_card, render_dataset_card, write_dataset_card
from .eval_results import load_eval_results
from .metric_space import render_metric_card
from .model_card import render_model_card
from .push import push_dataset, push_metric, push_model
from .upload import PushOptions, require_token

__all__ = [
    "PushOptions",
    "dataset_card",
    "load_eval_results",
    "main",
    "push_dataset",
    "push_metric",
    "push_model",
    "render_dataset_card",
    "render_metric_card",
    "render_model_card",
    "require_token",
    "write_dataset_card",
]
