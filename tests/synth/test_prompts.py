import pytest

from tinystories.synth.prompts import FEATURES, TEMPLATES, PromptSampler, render_prompt
from tinystories.synth.vocabulary import Vocabulary

VOCAB = Vocabulary(
    nouns=("ball", "cat", "dog", "park", "tree"),
    verbs=("jump", "run", "share"),
    adjectives=("big", "happy", "red"),
)


def test_gpt4_template_is_the_released_wording():
    text = render_prompt("jump", "ball", "red", ["Dialogue", "BadEnding"])
    assert text == (
        "Write a short story (3-5 paragraphs) which only uses very simple words that a 3 year old child would "
        'understand. The story should use the verb "jump", the noun "ball" and the adjective "red". The story has '
        "the following features: the story should contain at least one dialogue, the story has a bad ending. "
        "Remember to only use simple words!\n\nPossible story:"
    )
    assert "features" not in render_prompt("jump", "ball", "red", [])


def test_sampling_is_reproducible_and_index_addressable():
    a = PromptSampler(VOCAB, seed=7).prompts(50)
    b = PromptSampler(VOCAB, seed=7).prompts(50)
    assert a == b
    assert PromptSampler(VOCAB, seed=7).prompt(30) == a[30]  # story i does not depend on the others
    assert PromptSampler(VOCAB, seed=8).prompts(50) != a
    assert {p.verb for p in a} == set(VOCAB.verbs)  # every word reachable
    assert all(p.noun in VOCAB.nouns and p.adjective in VOCAB.adjectives for p in a)


def test_features_are_random_subsets_with_released_keys():
    prompts = PromptSampler(VOCAB, seed=1, feature_probability=0.5).prompts(400)
    sizes = {len(p.features) for p in prompts}
    assert 0 in sizes and max(sizes) >= 3
    assert {f for p in prompts for f in p.features} == set(FEATURES)
    record = prompts[0].instruction()
    assert set(record) == {"prompt:", "words", "features"}
    assert record["words"] == [prompts[0].verb, prompts[0].noun, prompts[0].adjective]
    for feature in prompts[0].features:
        assert FEATURES[feature] in record["prompt:"]


def test_templates_and_bad_settings():
    assert set(TEMPLATES) == {"gpt4", "paper", "gpt3.5"}
    paper = PromptSampler(VOCAB, template="paper").prompt(0)
    assert "likely understand" in paper.prompt and not paper.prompt.endswith("Possible story:")
    with pytest.raises(ValueError, match="Unknown prompt template 'gpt5'"):
        PromptSampler(VOCAB, template="gpt5")
    with pytest.raises(ValueError, match="Unknown story features"):
        PromptSampler(VOCAB, features=("Rhyme",))
    with pytest.raises(ValueError, match="feature_probability"):
        PromptSampler(VOCAB, feature_probability=1.5)
