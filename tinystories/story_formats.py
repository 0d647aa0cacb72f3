"""The formats TinyStories data comes in: files of stories (the V2 ``.txt`` format with ``<|endoftext|>`` between
stories, ``.jsonl``/``.json``, ``.parquet``; local or ``hf://``), and the TinyStories-Instruct text layout that the
generator writes and the evaluation prompts with."""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterator, Mapping

import datasets
from datasets import Dataset, Features, Value

from .errors import DataError
from .tokenization import EOS_TOKEN

TEXT_EXTENSIONS = (".txt",)
JSON_EXTENSIONS = (".jsonl", ".json")
PARQUET_EXTENSIONS = (".parquet",)
SUPPORTED_EXTENSIONS = TEXT_EXTENSIONS + JSON_EXTENSIONS + PARQUET_EXTENSIONS


def _open(path: str, mode: str = "r"):
    """Open a local path or any fsspec URL (``hf://`` is provided by huggingface_hub)."""
    if "://" in path:
        import fsspec

        return fsspec.open(path, mode, encoding="utf-8" if "b" not in mode else None).open()
    return open(path, mode, encoding="utf-8" if "b" not in mode else None)


def iter_stories(path: str, separator: str = EOS_TOKEN, chunk_chars: int = 1 << 20) -> Iterator[str]:
    """Stories of a text file in the TinyStories V2 format, streamed (the full V2 train file is 2 GB).

    Stories are separated by ``separator`` (usually on a line of its own); surrounding white space is stripped
    and empty stories are skipped.
    """
    buffer = ""
    with _open(path) as f:
        while chunk := f.read(chunk_chars):
            buffer += chunk
            *complete, buffer = buffer.split(separator)
            for story in complete:
                if story := story.strip():
                    yield story
    if story := buffer.strip():
        yield story


def write_stories(stories: list[str], path: str) -> str:
    """Write stories in the TinyStories V2 text format (``<|endoftext|>`` lines between stories)."""
    with open(path, "w", encoding="utf-8") as f:
        for story in stories:
            f.write(f"{story}\n{EOS_TOKEN}\n")
    return path


def _stories_generator(paths: list[str], text_column: str, fingerprints: list[str]) -> Iterator[dict[str, str]]:
    # `fingerprints` is unused here: it makes datasets' cache key change when a file changes.
    for path in paths:
        for story in iter_stories(path):
            yield {text_column: story}


def _file_fingerprint(path: str) -> str:
    if "://" in path:
        return path
    stat = os.stat(path)
    return f"{os.path.abspath(path)}:{stat.st_size}:{stat.st_mtime_ns}"


def _extension(path: str) -> str:
    for ext in SUPPORTED_EXTENSIONS:
        if path.lower().endswith(ext):
            return ext
    raise DataError(f"Unsupported data file {path!r}: use one of {', '.join(SUPPORTED_EXTENSIONS)}")


def _is_glob(path: str) -> bool:
    """A local pattern of files (a file whose name holds ``[``, ``*`` or ``?`` is still that file)."""
    return "://" not in path and glob.has_magic(path) and not os.path.exists(path)


def _check_file(path: str) -> None:
    """A local file (or each file of a local glob, e.g. a generated folder's ``default/train-*.parquet`` shards)
    exists and is not empty; remote paths are checked by their reader."""
    if "://" in path:
        return
    files = sorted(glob.glob(path)) if _is_glob(path) else [path]
    if not files:
        raise DataError(f"No data file matches {path}")
    for file in files:
        if not os.path.isfile(file):
            raise DataError(f"Data file not found: {file}")
        if os.path.getsize(file) == 0:
            raise DataError(f"Data file is empty: {file}")


def load_data_file(path: str, text_column: str = "text", cache_dir: str | None = None) -> Dataset:
    """One file (a JSON or Parquet path may also be a glob of shards) as a ``Dataset`` with (at least) the column
    ``text_column``; a clear error if it is unusable."""
    ext = _extension(path)
    _check_file(path)
    try:
        if ext in TEXT_EXTENSIONS:
            if _is_glob(path):
                raise DataError(f"{path}: a glob of {ext} files is not supported; give one file")
            if next(iter_stories(path), None) is None:
                raise DataError(f"No stories found in {path} (expected stories separated by {EOS_TOKEN})")
            dataset = Dataset.from_generator(
                _stories_generator,
                gen_kwargs={"paths": [path], "text_column": text_column, "fingerprints": [_file_fingerprint(path)]},
                features=Features({text_column: Value("string")}),
                cache_dir=cache_dir,
            )
        else:
            builder = "json" if ext in JSON_EXTENSIONS else "parquet"
            dataset = datasets.load_dataset(builder, data_files={"train": path}, split="train", cache_dir=cache_dir)
    except DataError:
        raise
    except Exception as e:  # datasets wraps parser errors in DatasetGenerationError; name the file and the cause
        cause = e.__cause__ or e
        raise DataError(f"Could not read {path} as {ext}: {type(cause).__name__}: {cause}") from e
    if len(dataset) == 0:
        raise DataError(f"No stories found in {path}")
    check_text_column(dataset, text_column, path)
    return dataset


def check_text_column(dataset: Dataset, text_column: str, source: str) -> None:
    if text_column not in dataset.column_names:
        raise DataError(
            f"{source} has no column {text_column!r} (columns: {', '.join(dataset.column_names)}); "
            "set text_column to the column holding the stories"
        )
    feature = dataset.features[text_column]
    if not (isinstance(feature, Value) and feature.dtype in ("string", "large_string")):
        raise DataError(f"Column {text_column!r} of {source} must hold strings, found {feature}")


def download_dataset_file(repo_id: str, filename: str, revision: str | None = None) -> str:
    """The local path of ``filename`` of the Hub dataset repo ``repo_id``, through huggingface_hub's cache; offline
    or on a Hub error, a one-line ``DataError``."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return hf_hub_download(repo_id, filename, repo_type="dataset", revision=revision)
    except LocalEntryNotFoundError as e:
        raise DataError(
            f"Could not download {filename} of the dataset {repo_id} from the Hugging Face Hub and it is not in the "
            f"local cache (offline, or HF_HUB_OFFLINE set?): {str(e).splitlines()[0]}"
        ) from None
    except (HfHubHTTPError, OSError) as e:
        cause = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise DataError(f"Could not download {filename} of the dataset {repo_id}: {cause}") from None


def hub_dataset_of_file(path: str | None) -> str | None:
    """``owner/name`` of an ``hf://datasets/owner/name[@revision]/file`` path, else None."""
    match = re.match(r"hf://datasets/([^/@]+/[^/@]+)", path or "")
    return match.group(1) if match else None


#: Story feature keys as in the released data (CamelCase), with the sentence each adds to a generation prompt
#: (and to GPT-Eval's Instruct exercise).
FEATURES: dict[str, str] = {
    "Dialogue": "the story should contain at least one dialogue",
    "BadEnding": "the story has a bad ending",
    "MoralValue": "the story has a moral value",
    "Twist": "something unexpected happens / there is a plot twist",
    "Foreshadowing": "the narrative uses foreshadowing or setup and payoff",
    "Conflict": "the story has some sort of conflict",
}


#: The instructions of a TinyStories-Instruct example, in their canonical order.
INSTRUCT_PARTS = ("Summary", "Features", "Random sentence", "Words")


def instruct_text(instructions: Mapping[str, str], story: str = "") -> str:
    """An Instruct example: one ``Part: value`` line per instruction (in the mapping's order, empty values left
    out), then ``Story: `` and ``story`` (empty: the prompt a model completes)."""
    unknown = [part for part in instructions if part not in INSTRUCT_PARTS]
    if unknown:
        raise ValueError(f"Unknown Instruct part(s) {unknown}; the parts are {', '.join(INSTRUCT_PARTS)}")
    lines = [f"{part}: {value}" for part, value in instructions.items() if value]
    return "\n".join([*lines, "Story: ", story])
