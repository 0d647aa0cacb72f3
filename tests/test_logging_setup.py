"""Quiet by default (no line per HTTP request), ``--log_level`` for more: a global option of ``tinystories`` that each
command also accepts among its own arguments."""

import logging

import pytest
from openai_server import FakeOpenAIServer

from tinystories.cli import main, with_log_level
from tinystories.logging_setup import QUIET_LOGGERS, configure_logging, pop_log_level

LENIENT = ["--min_words", "10", "--max_out_of_vocabulary", "0.6", "--dedup_threshold", "0.97"]


@pytest.fixture(autouse=True)
def _levels_restored():
    names = ["", "tinystories", *QUIET_LOGGERS]
    saved = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def generate(server, out, *before):
    main([*before, "generate", "--model", "fake-gpt", "--base_url", server.base_url, "--num_stories", "3"]
         + ["--output_dir", str(out), *LENIENT])  # fmt: skip


def http_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith(("httpx", "httpcore", "openai"))]


def test_generate_logs_no_line_per_request_by_default_and_does_with_log_level(tmp_path, caplog):
    caplog.set_level(logging.NOTSET)  # the capture keeps whatever the loggers let through
    with FakeOpenAIServer() as server:
        generate(server, tmp_path / "quiet")
        assert server.num_requests == 3
        assert http_lines(caplog) == []
        assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
        assert logging.getLogger("tinystories").getEffectiveLevel() == logging.INFO  # the package's own messages

        caplog.clear()
        generate(server, tmp_path / "loud", "--log_level", "info")  # the global option, before the command
        assert server.num_requests == 6
        assert sum("HTTP Request: POST" in line for line in http_lines(caplog)) == 3

        caplog.clear()
        main(["generate", "--model", "fake-gpt", "--base_url", server.base_url, "--num_stories", "3"]
             + ["--output_dir", str(tmp_path / "debug"), *LENIENT, "--log_level=debug"])  # fmt: skip
        assert logging.getLogger("httpx").getEffectiveLevel() == logging.DEBUG
        assert any(r.levelno == logging.DEBUG for r in caplog.records)  # the clients' internals


def test_the_global_option_reaches_each_command_as_its_own(capsys):
    assert with_log_level("train", ["r.yaml"], "debug") == ["r.yaml", "--log_level", "debug"]
    assert with_log_level("train", ["r.yaml", "--log_level", "info"], "debug") == ["r.yaml", "--log_level", "info"]
    assert with_log_level("serve", ["model"], None) == ["model"]
    assert with_log_level("push", ["model", "p", "r"], "warning") == ["model", "p", "r"]  # set here instead
    assert logging.getLogger("tinystories").getEffectiveLevel() == logging.WARNING
    assert pop_log_level(["a", "--log_level", "debug", "b", "--log-level=info"]) == ("info", ["a", "b"])
    with pytest.raises(SystemExit) as exited:
        main(["--log_level", "loud", "generate"])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tinystories --log_level: error: Bad value for --log_level: 'loud'") and "\n" not in err


def test_levels():
    configure_logging("warning")
    assert logging.getLogger("tinystories.generate").getEffectiveLevel() == logging.WARNING
    configure_logging(None)
    assert logging.getLogger("tinystories.generate").getEffectiveLevel() == logging.INFO
    assert all(logging.getLogger(name).getEffectiveLevel() == logging.WARNING for name in QUIET_LOGGERS)
