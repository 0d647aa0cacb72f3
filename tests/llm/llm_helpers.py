"""What the engine tests share: story prompts in the teacher's format and an engine against a local server."""

from tinystories.llm import LLMConfig, LLMEngine

WORDS = [("jump", "ball", "red"), ("share", "cake", "happy"), ("run", "park", "big"), ("hug", "bear", "soft")]


def story_requests(n, tag="Story"):
    requests = []
    for i in range(n):
        verb, noun, adjective = WORDS[i % len(WORDS)]
        prompt = (
            f'{tag} {i}. The story should use the verb "{verb}", the noun "{noun}" and the adjective "{adjective}".'
        )
        requests.append([{"role": "user", "content": prompt}])
    return requests


def engine(server_or_urls, tmp_path, validate=None, **overrides):
    base_url = server_or_urls if isinstance(server_or_urls, (str, list)) else server_or_urls.base_url
    config = dict(
        model="fake-gpt",
        base_url=base_url,
        cache_dir=str(tmp_path / "cache"),
        max_concurrency=16,
        request_timeout=60.0,  # generous: a loaded machine never times a normal request out
        backoff_base=0.01,
        backoff_max=0.2,
    )
    config.update(overrides)
    return LLMEngine(LLMConfig(**config), validate=validate, progress=False)
