# ruff: noqa: F401, F811
"""Text: a tokenizer's chat template, a SentencePiece-style (Metaspace) tokenizer's leading spaces and multi-byte
characters through a real server, and the incremental detokenization of rows (whole characters when streaming,
one decode for rows nobody reads while they generate)."""

import shutil

import pytest
from serve_helpers import make_client, tokenizer
from transformers import AutoTokenizer

from tinystories.serving import ServerThread, build_app
from tinystories.serving.detokenizer import Detokenizer
from tinystories.serving.rows import Job, Prompt, Row, SamplingParams


def test_a_tokenizer_chat_template_formats_the_messages(tiny_model, tmp_path):
    folder = str(tmp_path / "templated")
    shutil.copytree(tiny_model, folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = (
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    tokenizer.save_pretrained(folder)
    messages = [{"role": "user", "content": "Tell me a story about a frog."}]
    expected = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert expected == "<user>Tell me a story about a frog.\n<assistant>"
    with ServerThread(build_app(folder)) as base_url:
        client = make_client(base_url)
        assert [m.id for m in client.models.list().data] == ["templated"]
        reply = client.chat.completions.create(model="templated", messages=messages, max_tokens=6, temperature=0)
    assert reply.usage.prompt_tokens == len(tokenizer(expected, add_special_tokens=False).input_ids)
    assert reply.usage.completion_tokens <= 6


@pytest.fixture(scope="module")
def metaspace_model(tiny_model, tmp_path_factory):
    """The tiny model with a SentencePiece-style word tokenizer (Metaspace pre-tokenizer and decoder: a leading
    space is written ``▁``, and the first word of a decoded text loses it), built offline with ``tokenizers``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<unk>", "</s>", "<s>", "▁Once", "▁upon", "▁a", "▁time", "▁word", "▁café", "▁日本語", "▁🎉", "▁naïve"]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    folder = tmp_path_factory.mktemp("metaspace") / "model"
    shutil.copytree(tiny_model, folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt"):
        (folder / name).unlink(missing_ok=True)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="</s>", bos_token="<s>", unk_token="<unk>")
    tokenizer.save_pretrained(folder)
    assert tokenizer.decode([words.index("▁word")]) == "word"  # the bug's cause: no leading space alone
    return str(folder), {w: i for i, w in enumerate(words)}


def test_a_metaspace_reply_keeps_its_leading_space_and_streams_whole_characters(metaspace_model):
    folder, vocab = metaspace_model
    with ServerThread(build_app(folder, served_model_name="meta")) as base_url:
        client = make_client(base_url)
        word = {"model": "meta", "prompt": "Once upon a time", "max_tokens": 3, "temperature": 0}
        word["logit_bias"] = {str(vocab["▁word"]): 100}
        reply = client.completions.create(**word, logprobs=1)
        assert reply.choices[0].text == " word word word"
        assert reply.choices[0].logprobs.tokens == [" word"] * 3 and reply.choices[0].logprobs.text_offset == [
            0,
            5,
            10,
        ]
        assert client.completions.create(**word, echo=True).choices[0].text == "Once upon a time word word word"
        assert "".join(c.choices[0].text for c in client.completions.create(**word, stream=True)) == " word word word"

        # sampled among multi-byte words: the stream's chunks join to the same text as the plain reply
        many = {"model": "meta", "prompt": "Once upon a time", "max_tokens": 12, "seed": 1, "n": 2}
        many["logit_bias"] = {str(vocab[w]): 100 for w in ("▁café", "▁日本語", "▁🎉", "▁naïve")}
        plain = [c.text for c in client.completions.create(**many).choices]
        assert all(t.startswith(" ") and not t.isascii() and "\ufffd" not in t for t in plain), plain
        streamed = ["", ""]
        for chunk in client.completions.create(**many, stream=True):
            for choice in chunk.choices:
                streamed[choice.index] += choice.text
        assert streamed == plain


def _row(tokenizer, stream: bool, stops: list[str] | None = None, max_tokens: int = 100, decode=None) -> Row:
    """A row of a one-row job, decoding with ``decode`` (default: the tokenizer's, special tokens skipped)."""
    decode = decode or (lambda ids: tokenizer.decode(ids, skip_special_tokens=True))
    job = Job("completion", stream=stream, seed=None)
    prompt = Prompt([1], "")
    params = SamplingParams(temperature=0.0, max_tokens=max_tokens, stops=tuple(stops or ()))
    row = Row(job, 0, prompt, params, Detokenizer(decode, [], ""), frozenset({tokenizer.eos_token_id}))
    job.prompts, job.rows = [prompt], [row]
    return row


def test_streamed_rows_send_whole_multibyte_characters(tokenizer):
    text = "Café naïve: 日本語 🎉 ok"
    ids = tokenizer(text, add_special_tokens=False).input_ids
    assert len(ids) > len(text.split())  # byte-level: the characters are split over several tokens
    row, chunks = _row(tokenizer, stream=True), []
    for token in ids:
        row.add(token, None)
        chunks.append(row.delta(final=False).text)
    row.finish_reason = "length"
    row.finalize()
    chunks.append(row.delta(final=True).text)
    assert "".join(chunks) == row.text == tokenizer.decode(ids) == text
    assert not any("\ufffd" in c for c in chunks)

    row = _row(tokenizer, stream=True, stops=["本語"])
    for token in ids:
        row.add(token, None)
        if row.finished:
            break
    row.finalize()
    assert row.text == "Café naïve: 日" and row.finish_reason == "stop"


def test_rows_nobody_reads_while_generating_are_decoded_once(tokenizer):
    calls = []

    def counting_decode(ids):
        calls.append(1)
        return tokenizer.decode(ids, skip_special_tokens=True)

    ids = tokenizer("Once upon a time there was a dog.", add_special_tokens=False).input_ids
    row = _row(tokenizer, stream=False, max_tokens=len(ids), decode=counting_decode)
    for token in ids:
        row.add(token, None)
    assert calls == [] and row.finish_reason == "length"
    row.finalize()
    assert len(calls) == 1 and row.text == "Once upon a time there was a dog."
    streamed = _row(tokenizer, stream=True, max_tokens=len(ids), decode=counting_decode)
    for token in ids:
        streamed.add(token, None)
    assert len(calls) > len(ids)  # a streamed row decodes a window every step


def test_every_role_a_request_may_use_has_a_plain_dialogue_label():
    """A role the protocol accepts but the plain dialogue cannot name would fail that request with a 500."""
    import typing

    from tinystories.serving.protocol import Role
    from tinystories.serving.served_model import PLAIN_ROLES

    assert set(typing.get_args(Role)) == set(PLAIN_ROLES)
