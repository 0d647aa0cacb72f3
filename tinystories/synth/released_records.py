"""Records of the released TinyStories schema (``story``, ``instruction`` {``prompt:``, ``words``, ``features``},
``summary``, ``source``) streamed from wherever they are: JSON files (a JSON list of records, as the release's
``data00.json`` ... are, or JSON lines), Parquet files, a ``.tar.gz`` of JSON files (the release's
``TinyStories_all_data.tar.gz``), a folder or glob of those, or the Hugging Face Hub (``hf://datasets/...`` paths,
or a dataset id such as ``roneneldan/TinyStories``), downloaded through ``huggingface_hub``'s cache.

Nothing is held in memory beyond one record and one read buffer: the released data is ~2.7M records in ~50 JSON
files of ~80 MB. A file that is not valid JSON is a ``DataError`` naming the file (and the archive member).
"""

from __future__ import annotations

import codecs
import glob
import io
import json
import os
import re
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..errors import DataError
from ..story_formats import download_dataset_file

#: The file of the ``roneneldan/TinyStories`` dataset repo that holds the records of the released schema.
RELEASED_ARCHIVE = "TinyStories_all_data.tar.gz"
RECORD_SUFFIXES = (".json", ".jsonl", ".parquet")
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
_HUB_PATH = re.compile(r"hf://datasets/(?P<repo>[^/@]+/[^/@]+)(?:@(?P<revision>[^/]+))?/(?P<path>.+)")
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_CHUNK = 1 << 20
_DECODER = json.JSONDecoder()


@dataclass(frozen=True)
class Source:
    """One input file: ``name`` for messages, ``path`` on disk, ``size`` in bytes (for the progress bar)."""

    name: str
    path: str
    size: int


def _kind(path: str) -> str | None:
    lower = path.lower()
    if lower.endswith(ARCHIVE_SUFFIXES):
        return "archive"
    if lower.endswith(RECORD_SUFFIXES):
        return os.path.splitext(lower)[1][1:]
    return None


def _local(path: str) -> Source:
    if _kind(path) is None:
        accepted = ", ".join(RECORD_SUFFIXES + ARCHIVE_SUFFIXES)
        raise DataError(f"Unsupported data file {path!r}: use one of {accepted}, or a folder of such files")
    return Source(path, path, os.path.getsize(path))


def _download(repo_id: str, filename: str, revision: str | None = None) -> Source:
    """A file of a Hub dataset repo, through huggingface_hub's cache (offline: a clear one-line error)."""
    path = download_dataset_file(repo_id, filename, revision)
    return Source(f"{repo_id}/{filename}", path, os.path.getsize(path))


def _hub_files(match: re.Match) -> list[str]:
    """The repo paths an ``hf://datasets/...`` path names (a glob is listed on the Hub)."""
    path = match.group("path")
    if not glob.has_magic(path):
        return [path]
    from huggingface_hub import HfFileSystem

    prefix = f"datasets/{match.group('repo')}" + (f"@{match.group('revision')}" if match.group("revision") else "")
    try:
        found = HfFileSystem().glob(f"{prefix}/{path}")
    except Exception as e:  # offline: a connection error of any kind; name the path and the cause in one line
        raise DataError(f"Could not list {match.group(0)} on the Hugging Face Hub: {str(e).splitlines()[0]}") from None
    return sorted(name.split("/", 3)[3] for name in found if _kind(name))


def resolve_sources(data: str, hub_filename: str = RELEASED_ARCHIVE, exclude: str | None = None) -> list[Source]:
    """The input files ``data`` names: a file, a folder (its record files and archives, not recursive), a glob, an
    ``hf://datasets/owner/name[@revision]/path`` (a glob too), or a Hub dataset id (its ``hub_filename``).
    ``exclude`` (the output file) is never read."""
    skip = os.path.abspath(exclude) if exclude else None
    if match := _HUB_PATH.fullmatch(data):
        files = _hub_files(match)
        if not files:
            raise DataError(f"No JSON, Parquet or .tar.gz files match {data}")
        return [_download(match.group("repo"), f, match.group("revision")) for f in files]
    if os.path.isdir(data):
        paths = sorted(os.path.join(data, n) for n in os.listdir(data) if _kind(n) and not n.startswith("."))
        where = f"the folder {data}"
    elif glob.has_magic(data):
        paths = sorted(p for p in glob.glob(data, recursive=True) if os.path.isfile(p) and _kind(p))
        where = f"the glob {data!r}"
    elif os.path.isfile(data):
        return [_local(data)]
    elif _HUB_ID.fullmatch(data) and _kind(data) is None and not os.path.exists(os.path.dirname(data)):
        return [_download(data, hub_filename)]
    else:
        raise DataError(
            f"Data not found: {data} (a JSON/JSONL/Parquet file, a .tar.gz of JSON files, a folder or glob of them, "
            "an hf://datasets/... path, or a Hub dataset id such as roneneldan/TinyStories)"
        )
    paths = [p for p in paths if os.path.abspath(p) != skip]
    if not paths:
        raise DataError(f"No JSON, JSONL, Parquet or .tar.gz files in {where}")
    return [_local(p) for p in paths]


class _Counted(io.RawIOBase):
    """A binary file that reports each read's size to ``progress`` (the bar counts input bytes)."""

    def __init__(self, raw, progress: Callable[[int], object]):
        self.raw, self.progress = raw, progress

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self.raw.readinto(buffer)
        if n:
            self.progress(n)
        return n


def iter_json_values(binary, name: str) -> Iterator[object]:
    """The top-level values of a JSON file read in chunks: the items of a JSON list (the release's layout), or
    whitespace-separated values (JSON lines). Malformed JSON is a ``DataError`` naming ``name``."""
    text = codecs.getincrementaldecoder("utf-8-sig")()
    buffer, pos, offset, eof, in_list, started, closed = "", 0, 0, False, False, False, False

    def fail(message: str):
        raise DataError(f"{name}: not valid JSON near character {offset + pos}: {message}")

    while True:
        if pos > _CHUNK:  # drop what was consumed (rarely: slicing the buffer per value would be quadratic)
            buffer, offset, pos = buffer[pos:], offset + pos, 0
        while pos < len(buffer) and (buffer[pos].isspace() or (in_list and buffer[pos] == ",")):
            pos += 1
        if pos == len(buffer):
            if eof:
                break
            chunk = binary.read(_CHUNK)
            eof = not chunk
            buffer += text.decode(chunk or b"", final=eof)
            continue
        if closed:
            fail(f"unexpected {buffer[pos]!r} after the end of the list")
        if not started and buffer[pos] == "[":
            in_list, pos = True, pos + 1
            started = True
            continue
        started = True
        if in_list and buffer[pos] == "]":
            closed, pos = True, pos + 1
            continue
        try:
            value, end = _DECODER.raw_decode(buffer, pos)
        except json.JSONDecodeError as e:
            if not eof:  # the value may go on in the next chunk
                chunk = binary.read(_CHUNK)
                eof = not chunk
                buffer += text.decode(chunk or b"", final=eof)
                continue
            fail(e.msg)
        if end == len(buffer) and not eof and not isinstance(value, (dict, list, str)):
            chunk = binary.read(_CHUNK)  # a bare number or literal may go on in the next chunk: read it whole
            eof = not chunk
            buffer += text.decode(chunk or b"", final=eof)
            continue
        yield value
        pos = end
    if in_list and not closed:
        fail("the list is not closed (a truncated file?)")


def _iter_parquet(path: str, name: str, progress: Callable[[int], object], size: int) -> Iterator[object]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as e:  # pyarrow's errors are of several kinds; name the file and the cause
        raise DataError(f"{name}: not a readable Parquet file ({type(e).__name__}: {e})") from None
    columns = parquet.schema_arrow.names
    if "instruction" not in columns:
        raise DataError(f"{name}: no column 'instruction' (columns: {', '.join(columns)})")
    wanted = [c for c in ("instruction", "source") if c in columns]  # the stories are not needed
    groups = max(parquet.num_row_groups, 1)
    for group in range(parquet.num_row_groups):
        yield from parquet.read_row_group(group, columns=wanted).to_pylist()
        progress(size // groups)


def _iter_archive(binary, name: str) -> Iterator[tuple[str, object]]:
    try:
        archive = tarfile.open(fileobj=binary, mode="r|*")
    except tarfile.TarError as e:
        raise DataError(f"{name}: not a readable tar archive ({e})") from None
    with archive:
        try:
            for member in archive:
                base = os.path.basename(member.name)
                if not member.isfile() or base.startswith(".") or _kind(base) not in ("json", "jsonl"):
                    continue
                where = f"{name}:{member.name}"
                with archive.extractfile(member) as f:
                    for value in iter_json_values(f, where):
                        yield where, value
        except (tarfile.TarError, EOFError, OSError) as e:
            raise DataError(f"{name}: the archive is damaged or truncated ({type(e).__name__}: {e})") from None


def iter_records(sources: list[Source], progress: Callable[[int], object] = lambda n: None):
    """``(file name, value)`` for every top-level value of every source, in order (archive members are named
    ``archive:member``); ``progress(n)`` is called with the input bytes read."""
    for source in sources:
        kind = _kind(source.path)
        if kind == "parquet":
            for value in _iter_parquet(source.path, source.name, progress, source.size):
                yield source.name, value
            continue
        with open(source.path, "rb") as raw:
            binary = io.BufferedReader(_Counted(raw, progress), _CHUNK)
            if kind == "archive":
                yield from _iter_archive(binary, source.name)
            else:
                for value in iter_json_values(binary, source.name):
                    yield source.name, value
