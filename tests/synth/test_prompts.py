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
    assert render_prompt("hang", "foot", "cute", ["Dialogue"], "gpt4") == (
        "Write a short story (3-5 paragraphs) which only uses very simple words that a 3 year old child would "
        'understand. The story should use the verb "hang", the noun "foot" and the adjective "cute". The story has '
        "the following features: the story should contain at least one dialogue. Remember to only use simple "
        "words!\n\nPossible story:"
    )
    assert render_prompt("jump", "ball", "red", []) == (
        "Write a short story (3-5 paragraphs) which only uses very simple words that a 3 year old child would "
        'understand. The story should use the verb "jump", the noun "ball" and the adjective "red". Remember to only '
        "use simple words!\n\nPossible story:"
    )


def test_paper_template_is_the_papers_example_prompt():
    text = render_prompt("decorate", "thunder", "ancient", ["Dialogue", "BadEnding"], "paper")
    assert text == (
        "Write a short story (3-5 paragraphs) which only uses very simple words that a 3 year old child would likely "
        'understand. The story should use the verb "decorate", the noun "thunder" and the adjective "ancient". The '
        "story should have the following features: the story should contain at least one dialogue, the story has a "
        "bad ending. Remember to only use simple words!"
    )
    assert render_prompt("decorate", "thunder", "ancient", (), "paper") == (
        "Write a short story (3-5 paragraphs) which only uses very simple words that a 3 year old child would likely "
        'understand. The story should use the verb "decorate", the noun "thunder" and the adjective "ancient". '
        "Remember to only use simple words!"
    )


def test_gpt35_template_is_the_released_gpt35_wording():
    text = render_prompt("hope", "search", "comfortable", [], "gpt3.5")
    assert text == (
        "Write a short story (3-5 paragraphs) which only uses very simple words that a 3 year old child would "
        'understand. In the story, try to at some point use the verb "hope", the noun "search" and the adjective '
        '"comfortable". Remember to only use simple words!'
    )
    # the features sentence: the GPT-4 records' wording (the GPT-3.5 records' could not be checked; docs say so)
    assert render_prompt("hope", "search", "comfortable", ["MoralValue", "Twist"], "gpt3.5") == (
        "Write a short story (3-5 paragraphs) which only uses very simple words that a 3 year old child would "
        'understand. In the story, try to at some point use the verb "hope", the noun "search" and the adjective '
        '"comfortable". The story has the following features: the story has a moral value, something unexpected '
        "happens / there is a plot twist. Remember to only use simple words!"
    )


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_every_feature_sentence_is_rendered_in_the_given_order(template):
    order = ["Conflict", "Dialogue", "Foreshadowing"]
    text = render_prompt("run", "dog", "big", order, template)
    sentences = [FEATURES[f] for f in order]
    assert ", ".join(sentences) + ". Remember" in text
    assert text.count("following features") == 1
    with pytest.raises(ValueError, match=r"Unknown story features \['Rhyme'\]"):
        render_prompt("run", "dog", "big", ["Rhyme"], template)


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
