"""Recipes: one flat YAML file plus ``--key value`` overrides, parsed into configuration dataclasses.

Every command reads its settings this way (``tinystories train|generate|evaluate RECIPE.yaml [--key value ...]``):
values are typed by the dataclass fields through ``HfArgumentParser``, and every key is checked, so an unknown key
(a typo) is an error that names it and the closest known keys.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import sys
from typing import Any

import yaml
from transformers import HfArgumentParser

from .errors import RecipeError

# The files a run writes beside its outputs, which other pipelines read (the interfaces between pipelines):
#: the resolved recipe of a training run (``tinystories train recipe.yaml`` runs it again);
RECIPE_FILE = "recipe.yaml"
#: a training run's metrics and provenance (transformers' ``run_clm.py`` name), read by the model card;
RESULTS_FILE = "all_results.json"
#: a generation run's summary (recipe, counts, engine statistics, filter report), read by the dataset card.
GENERATION_FILE = "generation.json"


def _field_names(classes: tuple[type, ...]) -> set[str]:
    return {f.name for cls in classes for f in dataclasses.fields(cls) if f.init}


def _unknown_key_error(keys: list[str], known: set[str], where: str) -> RecipeError:
    parts = []
    for key in keys:
        close = difflib.get_close_matches(key, sorted(known), n=3)
        parts.append(f"{key!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
    return RecipeError(f"Unknown key{'s' if len(keys) > 1 else ''} in {where}: {'; '.join(parts)}")


def load_recipe(path: str | os.PathLike) -> dict[str, Any]:
    """The flat key -> value mapping of a YAML recipe."""
    try:
        with open(path, encoding="utf-8") as f:
            recipe = yaml.safe_load(f)
    except FileNotFoundError:
        raise RecipeError(f"Recipe not found: {path}") from None
    except yaml.YAMLError as e:
        raise RecipeError(f"Recipe {path} is not valid YAML: {e}") from None
    if recipe is None:
        return {}
    if not isinstance(recipe, dict):
        raise RecipeError(f"Recipe {path} must be a mapping of keys to values, got {type(recipe).__name__}")
    return recipe


def _split_overrides(tokens: list[str]) -> dict[str, list[str]]:
    """``["--a", "1", "--b", "--c=x"]`` -> ``{"a": ["1"], "b": [], "c": ["x"]}``."""
    overrides: dict[str, list[str]] = {}
    key = None
    for token in tokens:
        if token.startswith("--") and len(token) > 2:
            name, eq, value = token[2:].partition("=")
            key = name.replace("-", "_")
            overrides[key] = [value] if eq else []
        elif key is None:
            raise RecipeError(f"Unexpected argument {token!r}: overrides are written --key value")
        else:
            overrides[key].append(token)
    return overrides


class RecipeParser:
    """Parses ``[RECIPE.yaml] [--key value ...]`` into the argument dataclasses.

    Values are typed by the dataclass fields through ``HfArgumentParser`` (so ``--max_steps 20`` is an int and
    ``--bf16`` alone means true), the merged mapping is then validated with ``parse_dict(allow_extra_keys=False)``.
    """

    def __init__(self, classes: tuple[type, ...], prog: str = "tinystories", description: str | None = None):
        self.classes = classes
        self.parser = HfArgumentParser(classes, prog=prog, description=description)
        self.known = _field_names(classes)
        # a bool field defaulting to true also gets a `--no_X` store-false action with the same dest: keep `--X`'s
        self._actions = {}
        for action in self.parser._actions:
            if not (
                action.option_strings and action.option_strings[0].startswith("--no_") and action.dest in self._actions
            ):
                self._actions[action.dest] = action

    def _typed(self, key: str, raw: list[str]) -> Any:
        """A command-line value converted to the field's type by argparse."""
        action = self._actions[key]
        if not raw and action.nargs == "?":
            return action.const
        if not raw:
            raise RecipeError(f"--{key} needs a value")
        if action.nargs == "+":
            return [action.type(v) if action.type else v for v in raw]
        value = " ".join(raw)
        if value in ("null", "None", "~") and action.default is None:
            return None  # `--dataset_name null` unsets a recipe's value
        if action.type is None or action.type is str:
            # free-form fields (mappings, str-or-enum unions): read the text as YAML like the recipe's values
            loaded = yaml.safe_load(value)
            return loaded if isinstance(loaded, (dict, list)) else value
        try:
            value = action.type(value)
        except (TypeError, ValueError) as e:
            raise RecipeError(f"Bad value for --{key}: {' '.join(raw)!r} ({e})") from None
        if action.choices is not None and value not in action.choices:
            raise RecipeError(f"Bad value for --{key}: {value!r}; choose one of {', '.join(map(str, action.choices))}")
        return value

    def _coerce(self, key: str, value: Any) -> Any:
        """A recipe value of a numeric field written as a string (YAML reads 5e-4 as text)."""
        action = self._actions.get(key)
        if isinstance(value, str) and action is not None and action.type in (int, float):
            try:
                return action.type(value)
            except ValueError:
                raise RecipeError(f"{key} must be a {action.type.__name__}, got {value!r}") from None
        return value

    def merge(self, recipe: dict[str, Any], argv: list[str]) -> dict[str, Any]:
        """The recipe's mapping with the command-line overrides applied, every key checked."""
        unknown = [k for k in recipe if k not in self.known]
        if unknown:
            raise _unknown_key_error(unknown, self.known, "recipe")
        overrides = _split_overrides(argv)
        unknown = [k for k in overrides if k not in self.known]
        if unknown:
            raise _unknown_key_error(unknown, self.known, "command-line overrides")
        merged = {k: self._coerce(k, v) for k, v in recipe.items()}
        for key, raw in overrides.items():
            value = self._typed(key, raw)
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                value = {**merged[key], **value}  # a mapping override changes only the keys it names
            merged[key] = value
        return merged

    def parse(self, argv: list[str] | None = None) -> tuple:
        """``[RECIPE.yaml] [--key value ...]`` -> one instance of each argument class."""
        argv = list(sys.argv[1:] if argv is None else argv)
        if any(a in ("-h", "--help") for a in argv):
            self.parser.print_help()
            raise SystemExit(0)
        recipe: dict[str, Any] = {}
        if argv and not argv[0].startswith("--"):
            recipe = load_recipe(argv.pop(0))
        merged = self.merge(recipe, argv)
        return self.parse_dict(merged)

    def parse_dict(self, values: dict[str, Any]) -> tuple:
        """One instance of each argument class from a complete key -> value mapping."""
        unknown = [k for k in values if k not in self.known]
        if unknown:
            raise _unknown_key_error(unknown, self.known, "arguments")
        try:
            return self.parser.parse_dict(values, allow_extra_keys=False)
        except (TypeError, ValueError) as e:
            raise RecipeError(str(e)) from None
