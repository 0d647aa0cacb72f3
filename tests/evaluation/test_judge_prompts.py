"""The dialogues GPT-Eval sends the judge, captured on a local server: the paper's texts character for character
(Eldan & Li 2023; the strings below are copied from the paper as issue 11 quotes it, its spelling "gramatically"
included), the format line only on a re-ask, and the strict style's wording."""

import re

import evaluate
import pytest
from openai_server import FakeOpenAIServer

import tinystories.metrics
from tinystories.evaluation.eval_sets import instruct_prompt
from tinystories.evaluation.judge_prompts import exercise_text, instruction_of

PAPER_TURN_1 = (
    "the following exercise, the student is given a beginning of a story. The student needs to complete it into a "
    "full story. The exercise tests the student's language abilities and creativity. The symbol *** marks the "
    "separator between the prescribed beginning and the student's completion:"
    "\n\nOnce upon a time, Lily went to the*** park. She played all day.\n\n"
    "Please provide your general assessment about the part written by the student (the one after the *** symbol). "
    "Is it gramatically correct? Is it consistent with the beginning of the story? Pay special attention to "
    "whether the student manages to complete the sentence which is split in the middle by the separator ***."
)
PAPER_TURN_2 = (
    "Now, grade the student's completion in terms of grammar, creativity, consistency with the story's beginning "
    "and whether the plot makes sense. Moreover, please provide your best guess of what the age of the student "
    "might be, as reflected from the completion. Choose from possible age groups: A: 3 or under. B: 4-5. C: 6-7. "
    "D: 8-9. E: 10-12. F: 13-16."
)
REASK = (
    "I could not read your grades. Please answer again, in exactly this format and nothing else: "
    "Grammar: X/10, Creativity: X/10, Consistency: X/10, Plot: X/10, Age group: Y"
)
PAPER_INSTRUCT_TURN_1 = (
    "Your task is to evaluate the performance of a student. The student is given the following exercise: "
    "Write a short story. The story should contain the words: share, cookie, sweet. "
    'The story should contain the following sentence: "Do you want half?" Tom asked. '
    "The general plot of the story should be: Tom shares his sweet cookie with his sister. "
    "(feel free to expand beyond this general plot). "
    "The story should have the following features: the story should contain at least one dialogue, "
    "the story has a bad ending. "
    "The student wrote the following story:\n\nTom had a cookie.\n\n"
    "Please provide your general assessment about the story written by the student. Is it gramatically correct? "
    "Is it consistent with the requirements in the exercise?"
)
PAPER_INSTRUCT_TURN_2 = (
    "Now, grade the student's completion in terms of grammar, creativity, consistency with the instructions and "
    "whether the plot makes sense. Moreover, please provide your best guess of what the age of the student might "
    "be, as reflected from the completion. Choose from possible age groups: A: 3 or under. B: 4-5. C: 6-7. "
    "D: 8-9. E: 10-12. F: 13-16."
)
STRICT_TURN_1 = (
    "In the following exercise, the student is given a beginning of a story. The student needs to complete it into "
    "a full story. The exercise tests the student's language abilities and creativity. The symbol *** marks the "
    "separator between the prescribed beginning and the student's completion:"
    "\n\nOnce upon a time, Lily went to the*** park. She played all day.\n\n"
    "Please provide your general assessment about the part written by the student (the one after the *** symbol). "
    "Is it grammatically correct? Is it consistent with the beginning of the story? Pay special attention to "
    "whether the student manages to complete the sentence which is split in the middle by the separator ***."
)
STRICT_TURN_2 = (
    "Now, grade the student's completion in terms of grammar, creativity, consistency with the story's beginning, "
    "each out of 10. Moreover, please provide your best guess of what the age of the student might be, as "
    "reflected from the completion. Choose from possible age groups: A: 3 or under. B: 4-5. C: 6-7. D: 8-9. "
    "E: 10-12. F: 13-16.\n\nUse exactly this format: Grammar: X/10, Creativity: X/10, Consistency: X/10, "
    "Age group: Y"
)
STRICT_INSTRUCT_TURN_2 = (
    "Now, grade the student's completion in terms of grammar, creativity, consistency with the instructions, "
    "whether the plot makes sense, each out of 10. Moreover, please provide your best guess of what the age of "
    "the student might be, as reflected from the completion. Choose from possible age groups: A: 3 or under. "
    "B: 4-5. C: 6-7. D: 8-9. E: 10-12. F: 13-16.\n\nUse exactly this format: Grammar: X/10, Creativity: X/10, "
    "Consistency: X/10, Plot: X/10, Age group: Y"
)
INSTRUCTION = {
    "words": ["share", "cookie", "sweet"],
    "features": ["Dialogue", "BadEnding"],
    "summary": "Tom shares his sweet cookie with his sister.",
    "sentence": '"Do you want half?" Tom asked.',
}
ASSESSMENT = "The completion is fine."
FREE_GRADES = "Grammar: 8/10\nCreativity: 7/10\nConsistency: 8/10\nPlot: 7/10\nAge group: B (4-5)"


def grade_with(server, config_name="default", **kwargs):
    metric = evaluate.load(tinystories.metrics.GPT_EVAL, config_name=config_name, progress=False)
    return metric.compute(
        base_url=server.base_url, judge_model="fake-judge", max_retries=0, return_samples=True, **kwargs
    )


def dialogue(server):
    """The messages of the longest request the server received (the last turn of the dialogue)."""
    return max(server.requests, key=lambda r: len(r["messages"]))["messages"]


def test_default_config_paper_dialogue_is_the_papers_text_and_asks_the_format_only_on_a_reask(tmp_path):
    def judge(request):
        n = len(request["messages"])
        return ASSESSMENT if n == 1 else ("Lovely story!" if n == 3 else FREE_GRADES)

    with FakeOpenAIServer(responder=judge) as server:
        scores = grade_with(
            server,
            predictions=[" park. She played all day."],
            references=["Once upon a time, Lily went to the"],
            cache_dir=str(tmp_path),
        )
        messages = dialogue(server)
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    assert messages[0]["content"] == PAPER_TURN_1
    assert messages[1]["content"] == ASSESSMENT
    assert messages[2]["content"] == PAPER_TURN_2
    assert "format" not in messages[2]["content"] and "X/10" not in messages[2]["content"]
    assert messages[3]["content"] == "Lovely story!"
    assert messages[4]["content"] == REASK  # the format line, on the re-ask only
    assert scores["prompt_style"] == "paper"
    sample = scores["samples"][0]
    assert sample["grades"] == {"grammar": 8.0, "creativity": 7.0, "consistency": 8.0, "plot": 7.0, "age_group": "B"}
    assert scores["plot"] == 7.0 and scores["num_plot"] == 1 and sample["asks"] == 2


def test_instruct_config_paper_dialogue_renders_the_papers_exercise(tmp_path):
    _, reference = instruct_prompt(INSTRUCTION)  # what `tinystories evaluate` passes as the reference

    def judge(request):
        return ASSESSMENT if len(request["messages"]) == 1 else FREE_GRADES

    with FakeOpenAIServer(responder=judge) as server:
        scores = grade_with(
            server,
            "instruct",
            predictions=["Tom had a cookie."],
            references=[reference],
            cache_dir=str(tmp_path),
        )
        messages = dialogue(server)
    assert [m["content"] for m in messages] == [PAPER_INSTRUCT_TURN_1, ASSESSMENT, PAPER_INSTRUCT_TURN_2]
    assert scores["plot"] == 7.0 and scores["num_graded"] == 1 and scores["prompt_style"] == "paper"


def test_strict_style_keeps_the_format_line_on_the_first_grade_turn(tmp_path):
    def judge(request):
        return ASSESSMENT if len(request["messages"]) == 1 else "Grammar: 8/10, Creativity: 6/10, Consistency: 7/10"

    with FakeOpenAIServer(responder=judge) as server:
        scores = grade_with(
            server,
            predictions=[" park. She played all day."],
            references=["Once upon a time, Lily went to the"],
            prompt_style="strict",
            cache_dir=str(tmp_path / "a"),
        )
        default_messages = dialogue(server)
    assert [m["content"] for m in default_messages] == [STRICT_TURN_1, ASSESSMENT, STRICT_TURN_2]
    assert scores["prompt_style"] == "strict" and "plot" not in scores and scores["grammar"] == 8.0

    _, reference = instruct_prompt(INSTRUCTION)
    with FakeOpenAIServer(responder=lambda r: ASSESSMENT if len(r["messages"]) == 1 else FREE_GRADES) as server:
        grade_with(
            server,
            "instruct",
            predictions=["Tom had a cookie."],
            references=[reference],
            prompt_style="strict",
            cache_dir=str(tmp_path / "b"),
        )
        first, _, second = dialogue(server)
    assert first["content"].startswith("In the following exercise, the student is given instructions")
    assert f"Instructions:\n{reference}\n\nThe student's story:\nTom had a cookie.\n\n" in first["content"]
    assert second["content"] == STRICT_INSTRUCT_TURN_2


def test_default_config_reports_plot_only_over_replies_that_gave_it(tmp_path):
    replies = {
        "a": "Grammar: 8/10, Creativity: 6/10, Consistency: 7/10, Plot: 5/10, Age group: B",
        "b": "Grammar: 6/10, Creativity: 6/10, Consistency: 7/10, Age group: B",  # no plot: not guessed
    }

    def judge(request):
        tag = re.search(r"\*\*\* ([ab]) park", request["messages"][0]["content"]).group(1)
        return ASSESSMENT if len(request["messages"]) == 1 else replies[tag]

    with FakeOpenAIServer(responder=judge) as server:
        scores = grade_with(
            server, predictions=[" a park.", " b park."], references=["Lily went to"] * 2, cache_dir=str(tmp_path)
        )
        assert "plot" not in grade_with(
            server, predictions=[" b park."], references=["Lily went to"], cache_dir=str(tmp_path)
        )
    assert scores["plot"] == 5.0 and scores["num_plot"] == 1 and scores["plot_ci"] == [5.0, 5.0]
    assert "plot" not in scores["samples"][1]["grades"] and scores["grammar"] == 7.0


def test_a_paper_style_instruct_reference_that_carries_no_instruction_is_refused_before_any_request(tmp_path):
    with FakeOpenAIServer() as server:
        with pytest.raises(ValueError, match="neither an Instruct text"):
            grade_with(server, "instruct", predictions=["x"], references=["just some text"], cache_dir=str(tmp_path))
        assert server.num_requests == 0


def test_instruct_references_parse_back_from_the_instruct_text_and_from_json():
    _, text = instruct_prompt(INSTRUCTION)
    assert instruction_of(text) == INSTRUCTION
    assert instruction_of(text + "\nStory: ") == INSTRUCTION
    assert instruction_of('{"words": ["run", "dog", "big"]}') == {
        "words": ["run", "dog", "big"],
        "features": [],
        "sentence": "",
        "summary": "",
    }
    # absent parts are left out of the exercise; a sentence without final punctuation gets a period
    assert exercise_text({"words": ["run"], "sentence": "Tom ran"}) == (
        "Write a short story. The story should contain the words: run. "
        "The story should contain the following sentence: Tom ran."
    )
    assert exercise_text({"summary": "A dog runs.", "features": ["Twist"]}) == (
        "Write a short story. The general plot of the story should be: A dog runs. (feel free to expand beyond "
        "this general plot). The story should have the following features: something unexpected happens / there "
        "is a plot twist."
    )
