"""Publishing to the Hugging Face Hub: model, dataset and metric cards rendered from ``hub_cards/``, and
``tinystories push {model,dataset,metric}``."""

from .push import (
    dataset_card,
    load_eval_results,
    main,
    push_dataset,
    push_metric,
    push_model,
    render_dataset_card,
    render_metric_card,
    render_model_card,
    require_token,
    write_dataset_card,
)

__all__ = [
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
