"""The SDPA attention computes exactly GPT-Neo's eager attention: logits, gradients, generation, checkpoints."""

import json
import os

import pytest
import torch
from transformers import AutoModelForCausalLM

from tinystories.modeling.attention import GPTNeoSdpaSelfAttention
from tinystories.models import build_model, load_model, tinystories_config

VOCAB = 300
SHAPES = {
    # the released shapes' layer patterns, narrower (16 heads kept); window 256 as released
    "1M": dict(hidden_size=64, num_layers=8),
    "2Layers-33M": dict(hidden_size=128, num_layers=2),
}


def pair(preset, **overrides):
    config = tinystories_config(
        preset, vocab_size=VOCAB, max_position_embeddings=1024, **{**SHAPES[preset], **overrides}
    )
    eager = build_model(config, attn_implementation="eager", seed=0)
    sdpa = build_model(config, attn_implementation="sdpa", seed=0)
    return eager, sdpa


def batch(seq_len, padded):
    generator = torch.Generator().manual_seed(seq_len)
    ids = torch.randint(1, VOCAB, (2, seq_len), generator=generator)
    mask = torch.ones(2, seq_len, dtype=torch.long)
    if padded:
        mask[1, : seq_len // 3] = 0  # left padding
        mask[0, -7:] = 0  # right padding
    labels = ids.masked_fill(mask == 0, -100)
    return ids, mask, labels


@pytest.mark.parametrize("preset", list(SHAPES))
@pytest.mark.parametrize("seq_len", [100, 256, 300, 512])
@pytest.mark.parametrize("padded", [False, True], ids=["no-padding", "padding"])
def test_logits_and_gradients_match_eager(preset, seq_len, padded):
    eager, sdpa = pair(preset)
    assert isinstance(sdpa.transformer.h[-1].attn.attention, GPTNeoSdpaSelfAttention)
    ids, mask, labels = batch(seq_len, padded)
    attention_mask = mask if padded else None
    out_e = eager(ids, attention_mask=attention_mask, labels=labels)
    out_s = sdpa(ids, attention_mask=attention_mask, labels=labels)
    assert not torch.isnan(out_s.logits).any()
    # every position, padding included: a padding query's output still reaches the loss through the next label
    torch.testing.assert_close(out_s.logits, out_e.logits, atol=1e-4, rtol=1e-4)
    out_e.loss.backward()
    out_s.loss.backward()
    grads_e = dict(eager.named_parameters())
    for name, param in sdpa.named_parameters():
        assert torch.isfinite(param.grad).all(), name
        torch.testing.assert_close(param.grad, grads_e[name].grad, atol=1e-4, rtol=1e-3, msg=name)


def test_local_window_is_really_applied():
    # with window 4, a local layer must not see token 0 from position 10: changing it leaves layer-local outputs
    eager, sdpa = pair("2Layers-33M", window_size=4, attention_types=[[["local"], 2]])
    ids, _, _ = batch(16, padded=False)
    changed = ids.clone()
    changed[:, 0] = (changed[:, 0] + 1) % VOCAB
    with torch.no_grad():
        a, b = sdpa(ids).logits, sdpa(changed).logits
        torch.testing.assert_close(sdpa(ids).logits, eager(ids).logits, atol=1e-4, rtol=1e-4)
    # 2 local layers of window 4: position p sees tokens > p - 2 * 3; position 10 is out of token 0's reach
    torch.testing.assert_close(a[:, 10:], b[:, 10:])
    assert not torch.allclose(a[:, 1], b[:, 1])


@pytest.mark.parametrize("preset", list(SHAPES))
def test_greedy_generate_is_identical_across_the_window(preset):
    eager, sdpa = pair(preset)
    eager.eval(), sdpa.eval()
    ids, mask, _ = batch(250, padded=False)
    mask[1, :40] = 0  # a left-padded row, as batched generation makes them
    kwargs = dict(attention_mask=mask, max_new_tokens=20, do_sample=False, pad_token_id=0)
    with torch.no_grad():
        tokens_e = eager.generate(ids, **kwargs)
        tokens_s = sdpa.generate(ids, **kwargs)
    assert tokens_s.shape[1] == 270  # past the 256-token window while decoding with the KV cache
    assert torch.equal(tokens_e, tokens_s)


def test_checkpoints_stay_stock_gpt_neo(tmp_path):
    eager, sdpa = pair("1M")
    assert sdpa.state_dict().keys() == eager.state_dict().keys()
    sdpa.save_pretrained(tmp_path)
    config = json.load(open(os.path.join(tmp_path, "config.json")))
    assert "sdpa" not in json.dumps(config)
    plain = AutoModelForCausalLM.from_pretrained(tmp_path)  # plain transformers: eager
    assert plain.config._attn_implementation == "eager"
    ours = load_model(str(tmp_path))  # this package: sdpa by default
    assert isinstance(ours.transformer.h[0].attn.attention, GPTNeoSdpaSelfAttention)
    ids, _, _ = batch(300, padded=False)
    with torch.no_grad():
        torch.testing.assert_close(ours(ids).logits, plain(ids).logits, atol=1e-4, rtol=1e-4)


def test_bf16_autocast_matches_fp32_forward():
    _, sdpa = pair("2Layers-33M")
    ids, mask, labels = batch(300, padded=True)
    with torch.no_grad():
        fp32 = sdpa(ids, attention_mask=mask, labels=labels).loss
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = sdpa(ids, attention_mask=mask, labels=labels).loss
    assert abs(bf16.item() - fp32.item()) < 0.02 * fp32.item()


@pytest.mark.parametrize("seq_len", [100, 300])
def test_inference_with_left_padding_matches_eager_everywhere(seq_len):
    # without gradients, fully masked padding queries take the SDPA path with eager's uniform average
    eager, sdpa = pair("1M")
    ids, mask, _ = batch(seq_len, padded=True)
    with torch.no_grad():
        logits_e = eager(ids, attention_mask=mask).logits
        logits_s = sdpa(ids, attention_mask=mask).logits
    assert not torch.isnan(logits_s).any()
    torch.testing.assert_close(logits_s, logits_e, atol=1e-4, rtol=1e-4)


def test_fast_path_uses_the_fused_gelu_with_the_same_values():
    from transformers.activations import NewGELUActivation

    from tinystories.modeling.fast_path import FusedGELUTanh

    eager, sdpa = pair("1M")
    assert isinstance(sdpa.transformer.h[0].mlp.act, FusedGELUTanh)
    assert type(eager.transformer.h[0].mlp.act) is NewGELUActivation
    x = torch.linspace(-8, 8, 10_001)
    torch.testing.assert_close(FusedGELUTanh()(x), NewGELUActivation()(x), atol=1e-6, rtol=1e-6)


def test_output_attentions_still_returns_eager_weights():
    eager, sdpa = pair("2Layers-33M")
    ids, mask, _ = batch(300, padded=True)
    with torch.no_grad():
        weights_e = eager(ids, attention_mask=mask, output_attentions=True).attentions
        weights_s = sdpa(ids, attention_mask=mask, output_attentions=True).attentions
    assert len(weights_s) == 2 and all(w is not None for w in weights_s)
    valid = mask.bool()[:, None, :, None]  # weights of real query positions
    for w_s, w_e in zip(weights_s, weights_e):
        torch.testing.assert_close(w_s * valid, w_e * valid, atol=1e-5, rtol=1e-4)
