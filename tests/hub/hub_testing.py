"""What the Hub tests share: the sentinel token, hand-written GPT-Eval results, a fake of the Hub's HTTP API
(``FakeHub``, installed by the ``fake_hub`` fixture of conftest.py) and checks on folders and uploaded files."""

import os
from types import SimpleNamespace

from huggingface_hub import CommitInfo, RepoUrl

SENTINEL = "hf_SENTINELtoken123"
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")

GPT_EVAL_DEFAULT = {
    "model_name_or_path": "runs/tiny",
    "config_name": "default",
    "judge_model": "gpt-4o",
    "base_url": None,
    "num_prompts": 50,
    "num_completions": 10,
    "scores": {
        "grammar": 7.1,
        "grammar_ci": [6.9, 7.3],
        "creativity": 6.04,
        "creativity_ci": [5.8, 6.3],
        "consistency": 7.4,
        "consistency_ci": [7.2, 7.6],
        "age_group": {"A": 0.1, "B": 0.5, "C": 0.4, "D": 0.0},
        "num_graded": 498,
        "num_ungraded": 2,
    },
    "usage": {
        "requests_sent": 1000,
        "requests_cached": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "cost_usd": 1.2,
    },
    "settings": {},
}
GPT_EVAL_INSTRUCT = {
    **GPT_EVAL_DEFAULT,
    "config_name": "instruct",
    "scores": {**GPT_EVAL_DEFAULT["scores"], "plot": 5.5, "plot_ci": [5.2, 5.8]},
}


class FakeHub:
    """Records the repositories, branches and commits a push makes (and every call and token); no HTTP.
    ``private`` holds the visibility of the repositories that exist: set one to pretend it was there before."""

    def __init__(self):
        self.repos, self.branches, self.commits, self.calls, self.tokens = [], [], [], [], []
        self.private: dict[str, bool] = {}

    def create_repo(self, api, repo_id, **kwargs):
        assert api.token in (None, SENTINEL)
        self.calls.append("create_repo")
        self.tokens.append(api.token)
        self.repos.append({"repo_id": repo_id, **kwargs})
        repo_id = repo_id if "/" in repo_id else f"tester/{repo_id}"
        self.private.setdefault(repo_id, bool(kwargs.get("private")))
        prefix = {"dataset": "datasets/", "space": "spaces/"}.get(kwargs.get("repo_type"), "")
        return RepoUrl(f"https://huggingface.co/{prefix}{repo_id}")

    def repo_info(self, api, repo_id, **kwargs):
        self.calls.append("repo_info")
        return SimpleNamespace(id=repo_id, private=self.private[repo_id])

    def create_branch(self, api, repo_id, **kwargs):
        self.calls.append("create_branch")
        self.branches.append({"repo_id": repo_id, **kwargs})

    def create_commit(self, api, repo_id, operations, **kwargs):
        self.calls.append("create_commit")
        self.tokens.append(api.token)
        files = {}
        for op in operations:
            source = op.path_or_fileobj
            if isinstance(source, (str, os.PathLike)):
                with open(source, "rb") as f:
                    files[op.path_in_repo] = f.read()
            else:
                files[op.path_in_repo] = bytes(source)
        self.commits.append({"repo_id": repo_id, "files": files, **kwargs})
        return CommitInfo(
            commit_url=f"https://huggingface.co/{repo_id}/commit/0123abcd",
            commit_message=kwargs.get("commit_message"),
            commit_description="",
            oid="0123abcd",
            pr_url=None,
        )

    @property
    def commit(self):
        assert len(self.commits) == 1, self.commits
        return self.commits[0]


def tinystories_push(argv):
    """``tinystories push ARGV`` as the command runs it: a user error is one line on stderr and exit 2."""
    from tinystories.cli import main

    main(["push", *argv])


def assert_no_token(folder, files=None):
    """The sentinel token is in no uploaded file and in no file under ``folder``."""
    for name, content in (files or {}).items():
        assert SENTINEL.encode() not in content, f"token in uploaded {name}"
    for root, _, names in os.walk(folder):
        for name in names:
            with open(os.path.join(root, name), "rb") as f:
                assert SENTINEL.encode() not in f.read(), f"token in {os.path.join(root, name)}"


def uploaded_card(files, cls):
    return cls(files["README.md"].decode("utf-8"))


def snapshot(folder):
    """Every file of ``folder`` with its bytes: a push must leave it as it was."""
    files = {}
    for root, _, names in os.walk(folder):
        for name in names:
            with open(os.path.join(root, name), "rb") as f:
                files[os.path.relpath(os.path.join(root, name), folder)] = f.read()
    return files
