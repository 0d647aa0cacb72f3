"""``tinystories vocabulary DATA --output vocab.json`` on small files written here in the released layout: JSON list
files (``data00.json`` ...), the ``.tar.gz`` of them, JSON lines, Parquet, a glob; the output loads with
``load_vocabulary``; bad input is counted or is one line naming the file; the Hub forms fail clearly offline."""

import io
import json
import os
import re
import tarfile

import huggingface_hub.constants
import pytest

from tinystories.cli import main
from tinystories.synth import released_records
from tinystories.synth.vocabulary import load_vocabulary

FEATURE_SENTENCES = {
    "Dialogue": "the story should contain at least one dialogue",
    "BadEnding": "the story has a bad ending",
}


def gpt4_prompt(verb, noun, adjective, features=()):
    text = (
        "Write a short story (3-5 paragraphs) which only uses very simple words that a 3 year old child would "
        f'understand. The story should use the verb "{verb}", the noun "{noun}" and the adjective "{adjective}".'
    )
    if features:
        text += " The story has the following features: " + ", ".join(FEATURE_SENTENCES[f] for f in features) + "."
    return text + " Remember to only use simple words!\n\nPossible story:"


def gpt35_prompt(verb, noun, adjective):
    return (
        "Write a short story (3-5 paragraphs) which only uses very simple words that a 3 year old child would "
        f'understand. In the story, try to at some point use the verb "{verb}", the noun "{noun}" and the adjective '
        f'"{adjective}". Remember to only use simple words!'
    )


def record(words, prompt, features=(), source="GPT-4"):
    return {
        "story": "Once upon a time there was a story.",
        "instruction": {"prompt:": prompt, "words": list(words), "features": list(features)},
        "summary": "A story.",
        "source": source,
    }


def shard(offset: int) -> list[dict]:
    """One file of records: GPT-4 and GPT-3.5 wordings, the release's spellings, a word used twice."""
    return [
        record(["hang", "foot", "cute"], gpt4_prompt("hang", "foot", "cute", ["Dialogue"]), ["Dialogue"]),
        record(["hope", "search", "comfortable"], gpt35_prompt("hope", "search", "comfortable"), source="GPT-3.5"),
        record(["watch", "TV", "x-ray"], gpt4_prompt("watch", "TV", "x-ray", ["Dialogue", "BadEnding"])),
        record([f"jump{offset}", "foot", "happy"], gpt4_prompt(f"jump{offset}", "foot", "happy")),
    ]


EXPECTED = {
    "verbs": {"hang": 2, "hope": 2, "watch": 2, "jump0": 1, "jump1": 1},
    "nouns": {"foot": 4, "TV": 2, "search": 2},
    "adjectives": {"comfortable": 2, "cute": 2, "happy": 2, "x-ray": 2},
}


def write_json(path, value, indent=4):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=indent), encoding="utf-8")
    return path


@pytest.fixture
def released_folder(tmp_path):
    """The layout of the release's TinyStories_all_data: data00.json, data01.json, each a JSON list of records."""
    folder = tmp_path / "TinyStories_all_data"
    write_json(folder / "data00.json", shard(0))
    write_json(folder / "data01.json", shard(1))
    (folder / "notes.txt").write_text("not data\n", encoding="utf-8")
    return folder


def run(argv, capsys):
    """``tinystories vocabulary ARGV``: (exit code, stdout, stderr)."""
    code = 0
    try:
        main(["vocabulary", *map(str, argv)])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def error_line(err: str) -> str:
    """The one line of the error on stderr (the other lines are the progress bar's)."""
    *bar, line = err.strip().splitlines()
    assert line.startswith("tinystories vocabulary: error: "), err
    assert all(b.startswith("vocabulary:") for b in bar), err
    return line


def rebuilt(path) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def test_a_folder_of_json_list_files_gives_words_by_category_with_counts(released_folder, tmp_path, capsys):
    output = tmp_path / "out" / "vocab.json"
    code, out, err = run([released_folder, "--output", output], capsys)
    assert code == 0, err
    data = rebuilt(output)
    assert {k: data[k] for k in EXPECTED} == EXPECTED
    assert list(data["nouns"]) == ["foot", "TV", "search"]  # most used first
    summary = data["_summary"]
    assert summary["files"] == [str(released_folder / "data00.json"), str(released_folder / "data01.json")]
    assert summary["records"] == summary["records_used"] == 8
    assert summary["sources"] == {"GPT-4": 6, "GPT-3.5": 2}
    assert summary["records_with_unnamed_category"] == 0 and summary["records_skipped"] == {}
    assert summary["words"] == {"verbs": 5, "nouns": 3, "adjectives": 4}
    bundled = load_vocabulary()
    shared = {w for k in EXPECTED for w in EXPECTED[k]} & bundled.all_words
    assert summary["overlap_with_bundled"]["shared_words"] == len(shared) == 8  # not TV, x-ray, jump0, jump1
    assert summary["overlap_with_bundled"]["rebuilt_words"] == 12
    assert out.strip().splitlines()[-1] == (
        "Read 8 records (8 with instruction.words): 5 verbs, 3 nouns, 4 adjectives (12 distinct words); 0 record(s) "
        f"whose prompt did not name a word's category; 8 of the 12 words are in the bundled vocabulary "
        f"({len(bundled):,} words). Wrote {output}"
    )
    vocab = load_vocabulary(output)
    assert vocab.nouns == ("TV", "foot", "search")
    assert vocab.adjectives == ("comfortable", "cute", "happy", "x-ray")
    assert vocab.count("noun", "foot") == 4 and vocab.count("verb", "jump1") == 1


def tar_of(folder, path, extra: dict[str, bytes] | None = None):
    """A .tar.gz of the folder's JSON files under ``TinyStories_all_data/`` (and ``extra`` members)."""
    with tarfile.open(path, "w:gz") as archive:
        for name in sorted(os.listdir(folder)):
            archive.add(folder / name, arcname=f"TinyStories_all_data/{name}")
        for name, content in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return path


def test_the_tar_gz_gives_the_same_vocabulary_as_its_folder(released_folder, tmp_path, capsys):
    archive = tar_of(released_folder, tmp_path / "TinyStories_all_data.tar.gz", {"._data00.json": b"\x00\x05junk"})
    assert run([released_folder, "--output", tmp_path / "a.json"], capsys)[0] == 0
    code, out, err = run([archive, "--output", tmp_path / "b.json"], capsys)
    assert code == 0, err
    a, b = rebuilt(tmp_path / "a.json"), rebuilt(tmp_path / "b.json")
    assert {k: b[k] for k in EXPECTED} == {k: a[k] for k in EXPECTED} == EXPECTED
    assert b["_summary"]["records"] == 8 and b["_summary"]["files"] == [str(archive)]


def test_json_lines_parquet_and_a_glob_are_read(tmp_path, capsys):
    from datasets import Dataset

    (tmp_path / "part").mkdir()
    lines = "\n".join(json.dumps(r) for r in shard(0)) + "\n"
    (tmp_path / "part" / "a.jsonl").write_text(lines, encoding="utf-8")
    Dataset.from_list(shard(1)).to_parquet(str(tmp_path / "part" / "b.parquet"))
    code, out, err = run([tmp_path / "part" / "*", "--output", tmp_path / "vocab.json"], capsys)
    assert code == 0, err
    data = rebuilt(tmp_path / "vocab.json")
    assert {k: data[k] for k in EXPECTED} == EXPECTED
    assert [os.path.basename(f) for f in data["_summary"]["files"]] == ["a.jsonl", "b.parquet"]


def test_categories_come_from_the_prompt_and_unnamed_words_are_counted_not_guessed(tmp_path, capsys):
    records = [
        # words in another order than [verb, noun, adjective]; the paper's typographic quotes
        record(["ancient", "decorate", "thunder"], gpt4_prompt("decorate", "thunder", "ancient")),
        record(
            ["decorate", "thunder", "ancient"],
            "Write a short story. The story should use the verb ”decorate”, the noun ”thunder” and the adjective "
            "”ancient”. Remember to only use simple words!",
        ),
        record(["run", "dog", "red"], "Write a story about a dog that can run and is red."),  # no category named
        record(["run", "ball", "big"], 'Use the verb "run" and the noun "ball".'),  # one word unnamed
    ]
    write_json(tmp_path / "data.json", records)
    code, out, err = run([tmp_path / "data.json", "--output", tmp_path / "vocab.json"], capsys)
    assert code == 0, err
    data = rebuilt(tmp_path / "vocab.json")
    assert data["verbs"] == {"decorate": 2, "run": 1}
    assert data["nouns"] == {"thunder": 2, "ball": 1}
    assert data["adjectives"] == {"ancient": 2}
    assert data["_summary"]["records_with_unnamed_category"] == 2
    assert data["_summary"]["unnamed_words"] == {"run": 1, "dog": 1, "red": 1, "big": 1}
    assert "2 record(s) whose prompt did not name a word's category" in out


def test_records_without_instruction_words_are_skipped_with_a_warning(released_folder, tmp_path, capsys, caplog):
    odd = [*shard(2), {"story": "no instruction"}, "a string", record([], "no words"), {"instruction": "text"}]
    write_json(released_folder / "data02.json", odd)
    code, out, err = run([released_folder, "--output", tmp_path / "vocab.json"], capsys)
    assert code == 0, err
    summary = rebuilt(tmp_path / "vocab.json")["_summary"]
    assert summary["records"] == 16 and summary["records_used"] == 12
    assert summary["records_skipped"] == {"no instruction": 2, "not a JSON object": 1, "no instruction.words list": 1}
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        f"{released_folder / 'data02.json'}: 4 record(s) skipped (no instruction: 2, not a JSON object: 1, "
        "no instruction.words list: 1)"
    ]
    assert "4 record(s) skipped" in out


def test_a_spelling_the_loader_refuses_is_left_out_and_reported(tmp_path, capsys):
    records = [*shard(0), record(["go", "teddy bear", "red"], gpt4_prompt("go", "teddy bear", "red"))]
    write_json(tmp_path / "data.json", records)
    code, out, err = run([tmp_path / "data.json", "--output", tmp_path / "vocab.json"], capsys)
    assert code == 0, err
    data = rebuilt(tmp_path / "vocab.json")
    assert "teddy bear" not in data["nouns"] and data["nouns"]["foot"] == 2
    assert data["_summary"]["invalid_words"] == {"teddy bear": 1}
    assert "1 word(s) of spellings the loader refuses left out" in out
    load_vocabulary(tmp_path / "vocab.json")


def test_min_count_and_max_records(released_folder, tmp_path, capsys):
    code, _, err = run([released_folder, "--output", tmp_path / "v.json", "--min_count", "2"], capsys)
    assert code == 0, err
    assert rebuilt(tmp_path / "v.json")["verbs"] == {"hang": 2, "hope": 2, "watch": 2}
    code, _, err = run([released_folder, "--output", tmp_path / "w.json", "--max_records", "4"], capsys)
    assert code == 0, err
    data = rebuilt(tmp_path / "w.json")
    assert data["_summary"]["records"] == 4 and "jump1" not in data["verbs"] and data["verbs"]["jump0"] == 1


def test_the_output_inside_the_data_folder_is_not_read_back(released_folder, capsys):
    output = released_folder / "vocab.json"
    assert run([released_folder, "--output", output], capsys)[0] == 0
    first = rebuilt(output)
    code, _, err = run(["--data", released_folder, "--output", output], capsys)
    assert code == 0, err
    assert rebuilt(output) == first


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("data01.json", '[{"instruction": {"words": ["a"]}}, {"story": "cut', r"not valid JSON near character \d+"),
        ("data01.json", "[" + json.dumps(shard(0)[0]), r"the list is not closed \(a truncated file\?\)"),
        ("data01.json", json.dumps(shard(0)) + "]", r"unexpected '\]' after the end of the list"),
        ("data01.jsonl", json.dumps(shard(0)[0]) + "\n{oops}\n", r"not valid JSON near character \d+"),
    ],
)
def test_malformed_json_is_one_line_naming_the_file(released_folder, tmp_path, capsys, name, content, message):
    (released_folder / "data01.json").unlink()
    (released_folder / name).write_text(content, encoding="utf-8")
    code, out, err = run([released_folder, "--output", tmp_path / "vocab.json"], capsys)
    assert code == 2
    line = error_line(err)
    assert str(released_folder / name) in line
    assert re.search(message, line), line
    assert not (tmp_path / "vocab.json").exists()


def test_a_malformed_archive_member_is_named(released_folder, tmp_path, capsys):
    archive = tar_of(released_folder, tmp_path / "all.tar.gz", {"TinyStories_all_data/data09.json": b'[{"a": '})
    code, _, err = run([archive, "--output", tmp_path / "vocab.json"], capsys)
    assert code == 2
    assert f"{archive}:TinyStories_all_data/data09.json: not valid JSON" in error_line(err)


def test_a_truncated_archive_is_a_clear_error(released_folder, tmp_path, capsys):
    archive = tar_of(released_folder, tmp_path / "all.tar.gz")
    (tmp_path / "cut.tar.gz").write_bytes(archive.read_bytes()[:200])
    code, _, err = run([tmp_path / "cut.tar.gz", "--output", tmp_path / "vocab.json"], capsys)
    assert code == 2 and "cut.tar.gz" in error_line(err)


def test_a_category_that_comes_out_empty_is_an_error(tmp_path, capsys):
    write_json(tmp_path / "data.json", [record(["run", "dog"], 'Use the verb "run" and the noun "dog".')])
    code, _, err = run([tmp_path / "data.json", "--output", tmp_path / "vocab.json"], capsys)
    assert code == 2 and "No adjective found in the prompts of" in error_line(err)
    assert not (tmp_path / "vocab.json").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "DATA is required"),
        (["nowhere/at/all.json"], "Data not found: nowhere/at/all.json"),
        (["words.txt"], "Unsupported data file 'words.txt'"),
        (["empty_folder"], "No JSON, JSONL, Parquet or .tar.gz files in the folder empty_folder"),
        (["data.json", "--min_count", "0"], "min_count must be at least 1"),
        (
            ["data.json", "--outptu", "x.json"],
            "Unknown key in command-line overrides: 'outptu' (did you mean output?)",
        ),
    ],
)
def test_bad_command_lines_are_one_line_errors(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "words.txt").write_text("dog\n", encoding="utf-8")
    (tmp_path / "empty_folder").mkdir()
    write_json(tmp_path / "data.json", shard(0))
    code, _, err = run(argv, capsys)
    assert code == 2
    assert message in error_line(err)


@pytest.mark.parametrize(
    "data", ["roneneldan/TinyStories", "hf://datasets/roneneldan/TinyStories/TinyStories_all_data.tar.gz"]
)
def test_the_hub_forms_download_through_huggingface_hub_and_fail_clearly_offline(tmp_path, monkeypatch, capsys, data):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    code, _, err = run([data, "--output", tmp_path / "vocab.json"], capsys)
    assert code == 2
    assert error_line(err).startswith(
        "tinystories vocabulary: error: Could not download TinyStories_all_data.tar.gz of the dataset "
        "roneneldan/TinyStories from the Hugging Face Hub and it is not in the local cache"
    )


def test_help_lists_every_option(capsys):
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    assert out.startswith("usage: tinystories vocabulary DATA --output vocab.json")
    for option in ("--output", "--min_count", "--max_records", "--hub_filename", "roneneldan/TinyStories"):
        assert option in out
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "vocabulary DATA --output vocab.json" in capsys.readouterr().out


@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_the_streaming_reader_matches_json_load_at_any_chunk_size(monkeypatch, chunk):
    monkeypatch.setattr(released_records, "_CHUNK", chunk)
    values = [*shard(0), {"story": 'é "quoted" \\ ünïcödé 🐉', "n": [1, 2.5, None, True]}, 12345, "text"]
    text = "\ufeff" + json.dumps(values, indent=2, ensure_ascii=False)
    as_list = list(released_records.iter_json_values(io.BytesIO(text.encode("utf-8")), "x.json"))
    assert as_list == values
    lines = "\n".join(json.dumps(v, ensure_ascii=False) for v in values)
    assert list(released_records.iter_json_values(io.BytesIO(lines.encode("utf-8")), "x.jsonl")) == values
