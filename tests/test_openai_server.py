"""The fake OpenAI-compatible server (tests/openai_server.py), checked with the real ``openai`` client."""

import asyncio
import json
import re
import socket
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection

import openai
import pytest
from openai_server import FakeOpenAIServer, _Handler, _HTTPServer, default_responder

MODEL = "fake-gpt"
PROMPT = (
    "Write a short story (3-5 paragraphs) which only uses very simple words that a 3 year old child would "
    'understand. The story should use the verb "decorate", the noun "thunder" and the adjective "ancient". '
    "Remember to only use simple words!\n\nPossible story:"
)
SENTENCE_END = re.compile(r'[.!?]"?(?:\s|$)')


def client(server, **kwargs):
    options = {"api_key": "sk-test", "max_retries": 0, "timeout": 5.0}
    options.update(kwargs)
    return openai.OpenAI(base_url=server.base_url, **options)


def chat(c, content=PROMPT, **kwargs):
    return c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": content}], **kwargs)


def held(server):
    """Whether a "timeout" reply is being held now (the client is waiting on it)."""
    return any(record["held"] for record in server.records)


def http(method, url, body=None, headers=None):
    """(status, parsed JSON body) of a raw request made with urllib."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_models_list():
    with FakeOpenAIServer() as server:
        assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
        assert [m.id for m in client(server).models.list()] == ["fake-gpt"]
    with FakeOpenAIServer(model_name="teacher-4") as server:
        c = client(server)
        assert [m.id for m in c.models.list()] == ["teacher-4"]
        assert c.models.retrieve("teacher-4").id == "teacher-4"


def test_chat_story_uses_the_three_words_and_is_deterministic():
    with FakeOpenAIServer() as server:
        c = client(server)
        response = chat(c)
        assert response.object == "chat.completion" and response.model == MODEL
        choice = response.choices[0]
        story = choice.message.content
        assert choice.finish_reason == "stop" and choice.message.role == "assistant" and choice.index == 0
        assert story.startswith("Once upon a time")
        for word in ("decorate", "thunder", "ancient"):
            assert re.search(rf"\b{word}\b", story), (word, story)
        assert 3 <= len(SENTENCE_END.findall(story)) <= 5, story
        assert chat(c).choices[0].message.content == story  # identical request, identical reply
        others = {chat(c, PROMPT.replace("thunder", f"thunder{i}")).choices[0].message.content for i in range(8)}
        assert len(others) > 1  # the reply depends on the request
        usage = response.usage
        assert usage.prompt_tokens == len(PROMPT.split()) and usage.completion_tokens == len(story.split())
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
        assert server.num_requests == 10 and server.num_completed == 10 and server.requests[0]["model"] == MODEL


def test_summary_and_generic_replies():
    with FakeOpenAIServer() as server:
        c = client(server)
        summary = chat(c, "Summarize the following story in one sentence:\n\nOnce upon a time...").choices[0]
        assert len(SENTENCE_END.findall(summary.message.content)) == 1
        generic = chat(c, "Hello, who are you?").choices[0].message.content
        assert generic and "Once upon a time" not in generic
        # a prompt word containing "summar" does not turn a story prompt into a summary request
        story = chat(c, PROMPT.replace('"thunder"', '"summary"')).choices[0].message.content
        assert "summary" in story and len(SENTENCE_END.findall(story)) >= 3


def test_completions_endpoint():
    with FakeOpenAIServer() as server:
        response = client(server).completions.create(model=MODEL, prompt=PROMPT, max_tokens=200)
        assert response.object == "text_completion" and len(response.choices) == 1
        text = response.choices[0].text
        assert all(word in text for word in ("decorate", "thunder", "ancient"))
        assert response.choices[0].finish_reason == "stop"
        assert response.usage.completion_tokens == len(text.split()) > 0
        assert server.requests == [{"model": MODEL, "prompt": PROMPT, "max_tokens": 200}]


def test_n_gives_n_choices():
    with FakeOpenAIServer() as server:
        response = chat(client(server), n=3)
        assert [choice.index for choice in response.choices] == [0, 1, 2]
        contents = [choice.message.content for choice in response.choices]
        assert all("thunder" in content for content in contents)
        assert len(set(contents)) == 3  # n different stories, not one story repeated
        assert response.usage.completion_tokens == sum(len(content.split()) for content in contents)
        completions = client(server).completions.create(model=MODEL, prompt="Hi", n=3)
        assert len(completions.choices) == 3


def test_custom_responder_gets_the_request():
    seen = []

    def responder(request):
        seen.append(request)
        return f"echo: {request['messages'][-1]['content']}"

    with FakeOpenAIServer(responder=responder) as server:
        response = chat(client(server), "ping", n=2, temperature=0.5)
        assert [choice.message.content for choice in response.choices] == ["echo: ping", "echo: ping"]
        assert seen[0]["temperature"] == 0.5 and seen[0]["n"] == 2


def test_429_is_a_rate_limit_error_without_retries_and_is_retried_by_the_client():
    with FakeOpenAIServer(faults={"429": 1.0}, retry_after=0.05) as server:
        with pytest.raises(openai.RateLimitError) as info:
            chat(client(server))
        assert info.value.status_code == 429
        assert info.value.response.headers["retry-after"] == "0.05"
        assert info.value.code == "rate_limit_exceeded"
        assert server.faults_injected["429"] == 1 and server.num_completed == 0
        # the client's own retries: three attempts, all rate limited
        with pytest.raises(openai.RateLimitError):
            chat(client(server, max_retries=2))
        assert server.num_requests == 4 and server.faults_injected["429"] == 4

    with FakeOpenAIServer(fail_first={"429": 2}, retry_after=0.05) as server:
        response = chat(client(server, max_retries=2))
        assert "thunder" in response.choices[0].message.content
        assert server.num_requests == 3 and server.faults_injected == {"429": 2} and server.num_completed == 1
        records = server.records
        waits = [later["arrived_at"] - earlier["replied_at"] for earlier, later in zip(records, records[1:])]
        assert all(wait >= 0.05 for wait in waits), waits  # the client honoured retry-after before each retry
        assert server.repeated_identical_requests() == 0  # the failed attempts were not paid for


def test_500_is_an_internal_server_error():
    with FakeOpenAIServer(faults={"500": 1.0}) as server:
        with pytest.raises(openai.InternalServerError) as info:
            chat(client(server))
        assert info.value.status_code == 500
        assert info.value.body["type"] == "server_error"
        assert server.faults_injected == {"500": 1} and server.num_completed == 0


def test_503_is_an_overloaded_server_with_retry_after():
    with FakeOpenAIServer(faults={"503": 1.0}, retry_after=2) as server:
        with pytest.raises(openai.InternalServerError) as info:
            chat(client(server))
        assert info.value.status_code == 503 and info.value.response.headers["retry-after"] == "2"
        assert server.faults_injected == {"503": 1} and server.num_completed == 0


def send_raw(server, content: str) -> HTTPConnection:
    """A chat request sent on its own connection, the reply not read yet (close the connection to hang up)."""
    conn = HTTPConnection("127.0.0.1", server.port, timeout=120)
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": content}]})
    conn.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
    return conn


def test_capacity_serves_that_many_at_once_and_queues_the_rest_first_come_first_served():
    with FakeOpenAIServer(capacity=2, service_time=600) as server:  # served until the test shortens service_time
        conns = []
        for i in range(5):
            conns.append(send_raw(server, f"story {i}"))
            assert server.wait_until(lambda n=i + 1: server.serving + server.queue_length == n)  # in send order
        assert server.wait_until(lambda: server.serving == 2 and server.queue_length == 3)
        records = server.records
        assert [r["queued"] for r in records] == [False, False, True, True, True]
        assert records[0]["started_at"] is not None and records[2]["started_at"] is None
        assert server.in_flight == 5  # queued requests are in flight for the client: their wait counts
        server.service_time = 0  # applies at once: everything is answered, two at a time, in order
        replies = [conn.getresponse() for conn in conns]
        assert [r.status for r in replies] == [200] * 5
        for r, conn in zip(replies, conns):
            assert json.loads(r.read())["choices"][0]["message"]["content"]
            conn.close()
        records = server.records
        assert server.max_serving == 2 and server.num_succeeded == 5 and server.num_dropped == 0
        starts = [r["started_at"] for r in records]
        assert starts == sorted(starts)  # first come, first served


def test_a_client_that_hangs_up_is_dropped_from_the_queue_and_from_service():
    with FakeOpenAIServer(capacity=1, service_time=600) as server:
        served, queued, last = send_raw(server, "served"), None, None
        assert server.wait_until(lambda: server.serving == 1)
        queued = send_raw(server, "queued")
        assert server.wait_until(lambda: server.queue_length == 1)
        last = send_raw(server, "last")
        assert server.wait_until(lambda: server.queue_length == 2)
        queued.close()  # gives up while waiting: dropped, its place freed
        assert server.wait_until(lambda: server.num_dropped == 1 and server.queue_length == 1)
        served.close()  # gives up while being served (vLLM aborts it): its slot goes to the next one at once
        assert server.wait_until(lambda: server.num_dropped == 2 and server.serving == 1 and server.queue_length == 0)
        with pytest.raises(openai.APITimeoutError):  # the openai client timing out in the queue is dropped too
            chat(client(server, timeout=0.2), "timed out")
        assert server.wait_until(lambda: server.num_dropped == 3 and server.queue_length == 0)
        server.service_time = 0
        reply = last.getresponse()
        assert reply.status == 200 and json.loads(reply.read())["choices"]
        last.close()
        by_content = {r["request"]["messages"][0]["content"]: r for r in server.records}
    assert by_content["queued"]["dropped"] and by_content["queued"]["started_at"] is None
    assert by_content["served"]["dropped"] and by_content["served"]["started_at"] is not None
    assert by_content["timed out"]["dropped"] and by_content["timed out"]["status"] == 499
    assert not any(by_content[k]["delivered"] for k in ("queued", "served", "timed out"))
    assert by_content["last"]["success"] and not by_content["last"]["dropped"]
    assert server.repeated_identical_requests() == 0


def test_timeout_fault_holds_the_reply_until_the_client_gives_up():
    with FakeOpenAIServer(faults={"timeout": 1.0}) as server:
        with pytest.raises(openai.APITimeoutError):
            chat(client(server, timeout=1.0))  # any timeout: the reply never comes while the client waits
        assert server.wait_until(lambda: server.records[0]["status"] is not None)  # the server saw it hang up
        record = server.records[0]
        assert record["fault"] == "timeout" and not record["delivered"] and not record["held"]
        assert server.faults_injected == {"timeout": 1} and server.num_completed == 0
    # without the fault the same client gets its answer
    with FakeOpenAIServer() as server:
        assert chat(client(server, timeout=1.0)).choices[0].message.content


def test_held_replies_are_answered_when_released_or_after_timeout_sleep():
    with FakeOpenAIServer(faults={"timeout": 1.0}) as server, ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(chat, client(server, timeout=120.0))
        assert server.wait_until(lambda: held(server))
        server.release_held()
        assert "thunder" in waiting.result(timeout=120).choices[0].message.content
        assert server.records[0]["delivered"] and not server.records[0]["held"]
    with FakeOpenAIServer(faults={"timeout": 1.0}, timeout_sleep=0.05) as server:  # a capped hold
        assert "thunder" in chat(client(server, timeout=120.0)).choices[0].message.content


def test_truncated_body_is_a_connection_error():
    with FakeOpenAIServer(faults={"truncated": 1.0}) as server:
        # the client reads a 200 with a short body: httpx raises RemoteProtocolError, wrapped by openai as an
        # APIConnectionError (not APITimeoutError, and not a JSON decode error)
        with pytest.raises(openai.APIConnectionError) as info:
            chat(client(server))
        assert not isinstance(info.value, openai.APITimeoutError)
        assert "peer closed connection" in str(info.value.__cause__)
        assert server.faults_injected == {"truncated": 1} and server.num_completed == 0
        assert server.records[0]["status"] == 200 and not server.records[0]["success"]


def test_length_fault_cuts_the_reply_mid_sentence():
    with FakeOpenAIServer() as server:
        full = chat(client(server)).choices[0].message.content
    with FakeOpenAIServer(faults={"length": 1.0}) as server:
        choice = chat(client(server)).choices[0]
        assert choice.finish_reason == "length"
        assert full.startswith(choice.message.content) and len(choice.message.content) < len(full)
        assert not choice.message.content.endswith((".", "!", "?", '"'))
        assert server.faults_injected == {"length": 1} and server.num_completed == 1 and server.num_succeeded == 0


def test_empty_fault_returns_empty_content():
    with FakeOpenAIServer(faults={"empty": 1.0}) as server:
        response = chat(client(server), n=2)
        assert [choice.message.content for choice in response.choices] == ["", ""]
        assert response.choices[0].finish_reason == "stop" and response.usage.completion_tokens == 0
        assert server.faults_injected == {"empty": 1} and server.num_completed == 1 and server.num_succeeded == 0


def test_fail_first_fails_every_distinct_body_the_first_k_times():
    with FakeOpenAIServer(fail_first={"500": 1, "429": 1}) as server:
        c = client(server)
        for content in ("one", "two"):
            with pytest.raises(openai.InternalServerError):
                chat(c, content)
            with pytest.raises(openai.RateLimitError):
                chat(c, content)
            assert chat(c, content).choices[0].message.content
            assert chat(c, content).choices[0].message.content  # and from then on always succeeds
        assert server.faults_injected == {"500": 2, "429": 2} and server.num_succeeded == 4
        assert [r["fault"] for r in server.records] == ["500", "429", None, None] * 2


def test_random_faults_are_reproducible_from_the_seed():
    def outcomes(seed):
        with FakeOpenAIServer(faults={"429": 0.2, "500": 0.2, "empty": 0.1}, seed=seed) as server:
            c = client(server)
            result = []
            for i in range(30):
                try:
                    content = chat(c, f"request {i}").choices[0].message.content
                    result.append("empty" if content == "" else "ok")
                except openai.RateLimitError:
                    result.append("429")
                except openai.InternalServerError:
                    result.append("500")
            assert sum(server.faults_injected.values()) == 30 - result.count("ok")
            return result

    first = outcomes(seed=1)
    assert outcomes(seed=1) == first
    assert outcomes(seed=2) != first
    assert 0 < first.count("ok") < 30 and {"429", "500"} <= set(first)


def test_repeated_identical_requests_counts_only_successfully_answered_duplicates():
    with FakeOpenAIServer(fail_first={"429": 1}) as server:
        c = client(server, max_retries=1)
        chat(c, "a")  # 429, then the client's retry succeeds
        assert server.num_requests == 2 and server.repeated_identical_requests() == 0
        chat(c, "b")
        assert server.repeated_identical_requests() == 0
        chat(c, "a")  # paid twice for the same work
        assert server.repeated_identical_requests() == 1
        chat(c, "a", temperature=0.0)  # a different body is not a duplicate
        assert server.repeated_identical_requests() == 1
    with FakeOpenAIServer(faults={"empty": 1.0}) as server:
        c = client(server)
        chat(c, "a")
        chat(c, "a")  # the first reply was faulty (empty), asking again is legitimate
        assert server.num_completed == 2 and server.repeated_identical_requests() == 0


def test_reset_counters():
    with FakeOpenAIServer(fail_first={"429": 1}) as server:
        c = client(server, max_retries=1)
        chat(c, "a")
        chat(c, "a")
        assert server.num_requests == 3 and server.repeated_identical_requests() == 1
        server.reset_counters()
        assert server.num_requests == 0 and server.requests == [] and server.faults_injected == {}
        assert server.num_completed == 0 and server.max_concurrency == 0 and server.repeated_identical_requests() == 0
        chat(c, "a")  # the fail_first schedule continues: "a" already used its failure
        assert server.faults_injected == {} and server.num_requests == 1
        server.reset_counters(reset_faults=True)
        with pytest.raises(openai.RateLimitError):
            chat(client(server), "a")


def test_concurrent_async_requests_are_served_in_parallel():
    async def run(base_url):
        async with openai.AsyncOpenAI(base_url=base_url, api_key="sk-test", max_retries=0, timeout=120.0) as c:
            tasks = [
                c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"story {i}"}])
                for i in range(32)
            ]
            return await asyncio.gather(*tasks)

    with FakeOpenAIServer() as server, ThreadPoolExecutor(1) as pool:
        server.pause_replies()  # no reply until all 32 requests are in flight at once
        running = pool.submit(asyncio.run, run(server.base_url))
        assert server.wait_until(lambda: server.in_flight == 32), server.in_flight
        server.resume_replies()
        responses = running.result(timeout=120)
        assert len(responses) == 32 and all(r.choices[0].message.content for r in responses)
        assert server.max_concurrency == 32, server.max_concurrency
        assert server.num_completed == 32 and server.repeated_identical_requests() == 0


def test_api_key_is_required_when_configured():
    with FakeOpenAIServer(require_api_key="sk-test") as server:
        with pytest.raises(openai.AuthenticationError) as info:
            chat(client(server, api_key="sk-wrong"))
        assert info.value.status_code == 401
        status, body = http("GET", f"{server.base_url}/models")
        assert status == 401 and body["error"]["code"] == "invalid_api_key"
        assert chat(client(server, api_key="sk-test")).choices[0].message.content
        assert server.num_requests == 1  # rejected requests are not recorded


def test_bad_json_is_400_and_unknown_path_is_404():
    with FakeOpenAIServer() as server:
        headers = {"Content-Type": "application/json"}
        status, body = http("POST", f"{server.base_url}/chat/completions", b"{not json", headers)
        assert status == 400
        assert set(body["error"]) >= {"message", "type", "code"} and body["error"]["type"] == "invalid_request_error"
        status, body = http("POST", f"{server.base_url}/chat/completions", b"[1, 2]", headers)
        assert status == 400 and body["error"]["code"] == "invalid_json"
        status, body = http("GET", f"{server.base_url}/nope")
        assert status == 404 and body["error"]["code"] == "unknown_url"
        status, body = http("POST", f"{server.base_url}/embeddings", b"{}", headers)
        assert status == 404 and "error" in body
        with pytest.raises(openai.NotFoundError):
            client(server).embeddings.create(model=MODEL, input="hi")
        assert server.num_requests == 0


def test_sequential_requests_do_not_stall_on_delayed_acks():
    # with Nagle's algorithm on, each reply (headers and body are two writes) waits ~40 ms for the client's delayed
    # ACK: the server's end of every connection must have TCP_NODELAY set
    with FakeOpenAIServer() as server:
        c = client(server)
        for i in range(3):
            chat(c, f"request {i}")
        with server._lock:
            connections = list(server._connections)
        assert len(connections) == 1  # the client's keep-alive connection, reused
        assert all(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for conn in connections)
    assert _Handler.disable_nagle_algorithm and _HTTPServer.daemon_threads and _HTTPServer.request_queue_size >= 1024


def test_exit_does_not_wait_for_stuck_handlers():
    entered, unstick = threading.Event(), threading.Event()

    def stuck(request):  # a handler stuck for good (until the test ends), deaf to the server's stop
        entered.set()
        unstick.wait(300)
        return "too late"

    server = FakeOpenAIServer(responder=stuck).start()
    try:
        with ThreadPoolExecutor(2) as pool:
            waiting = pool.submit(chat, client(server, timeout=120.0))
            assert entered.wait(60)
            pool.submit(server.stop).result(timeout=60)  # returns while the handler is still stuck
            assert not unstick.is_set()
            with pytest.raises(openai.APIConnectionError):  # and the waiting client is cut off, not left hanging
                waiting.result(timeout=60)
    finally:
        unstick.set()


def test_server_stops_on_exit():
    with FakeOpenAIServer() as server:
        url = f"{server.base_url}/models"
        c = client(server)
        assert c.models.list().data  # the client keeps a pooled keep-alive connection
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=2)
    with pytest.raises(openai.APIConnectionError):
        c.models.list()


def test_default_responder_without_server():
    request = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "n": 2}
    replies = default_responder(request)
    assert len(replies) == 2 and replies == default_responder(dict(request))
    assert all("ancient thunder" in reply for reply in replies)
