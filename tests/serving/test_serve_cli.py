"""``tinystories serve``'s command line and start-up: flags generated from ``ServeSettings`` (MODEL positional,
every flag with its default in ``--help``), and start-up errors as ``ServeError`` (one line, exit 2, from the
``tinystories`` command): a missing model folder, bad settings, a busy port, FastAPI not installed."""

import dataclasses
import socket
import sys

import pytest

import tinystories.serving
from tinystories.cli import main as tinystories_main
from tinystories.errors import ServeError
from tinystories.serving import API_KEY_ENV, ServeSettings, build_app
from tinystories.serving import main as serve_main
from tinystories.serving.cli import parse_args


def one_line_error(capsys, argv: list[str]) -> str:
    """``tinystories serve ARGV`` fails with exit code 2 and one line on stderr; that line."""
    with pytest.raises(SystemExit) as e:
        tinystories_main(["serve", *argv])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and "\n" not in err and err.startswith("tinystories serve: error:"), err
    return err


def test_help_lists_every_setting_with_its_default(capsys):
    with pytest.raises(SystemExit) as e:
        serve_main(["--help"])
    out = " ".join(capsys.readouterr().out.split())  # (argparse wraps lines)
    assert e.value.code == 0 and "MODEL" in out and API_KEY_ENV in out
    for field in dataclasses.fields(ServeSettings):
        if field.name == "model":
            assert "--model" not in out  # positional
            continue
        assert f"--{field.name}" in out, field.name
        assert f"(default: {field.default})" in out, field.name


def test_the_model_is_positional_and_every_flag_keeps_its_name_and_default():
    settings = parse_args(["some/model/dir", "--host", "127.0.0.1", "--port", "8000"])
    assert (settings.model, settings.host, settings.port) == ("some/model/dir", "127.0.0.1", 8000)
    defaults = ServeSettings(model="some/model/dir")
    assert settings == defaults
    settings = parse_args(
        ["--max_batch_size", "4", "m", "--truncate_prompts", "--batch_wait_ms", "2.5", "--dtype", "bfloat16"]
    )
    assert (settings.model, settings.max_batch_size, settings.truncate_prompts) == ("m", 4, True)
    assert (settings.batch_wait_ms, settings.dtype, settings.max_model_len) == (2.5, "bfloat16", None)


def test_a_missing_model_folder_is_one_line(tmp_path, capsys):
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(ServeError, match="no-such-model"):
        serve_main([missing])
    assert "no-such-model" in one_line_error(capsys, [missing])


def test_bad_settings_are_one_line_errors(tiny_model, capsys):
    assert "max_batch_size must be at least 1, got 0" in one_line_error(capsys, [tiny_model, "--max_batch_size", "0"])
    assert "--port" in one_line_error(capsys, [tiny_model, "--port", "eighty"])
    assert "--dtype" in one_line_error(capsys, [tiny_model, "--dtype", "float8"])
    assert "--bogus" in one_line_error(capsys, [tiny_model, "--bogus", "1"])
    assert "MODEL" in one_line_error(capsys, [])
    assert "device must be" in one_line_error(capsys, [tiny_model, "--device", "gpu0", "--port", "0"])
    with pytest.raises(ServeError, match="batch_wait_ms"):
        build_app(tiny_model, batch_wait_ms=-1)
    with pytest.raises(ServeError, match="max_batchsize"):
        build_app(tiny_model, max_batchsize=4)  # a typo is named, not ignored


def test_a_busy_port_is_one_line_before_the_model_loads(tmp_path, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        err = one_line_error(capsys, [str(tmp_path), "--port", str(port)])  # (an empty folder: never loaded)
    assert f"cannot listen on 127.0.0.1:{port}" in err


def test_without_fastapi_the_error_says_how_to_install_it(tiny_model, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "fastapi", None)  # `import fastapi` now raises ImportError
    err = one_line_error(capsys, [tiny_model])
    assert "FastAPI and uvicorn" in err and "pip install 'tinystories[serve]'" in err
    with pytest.raises(ServeError, match="fastapi is missing"):
        tinystories.serving.build_app  # noqa: B018 - the attribute loads the app module
