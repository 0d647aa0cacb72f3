"""Error replies in OpenAI's shape (``{"error": {"message", "type", "param", "code"}}``): the ``APIError``
exception, strict JSON reading of request bodies, and pydantic's / FastAPI's validation errors mapped to a 400
that names the first bad parameter."""

import json
from typing import Any

GENERIC_500 = "The server had an error while generating this reply (see the server's log); retry the request."
#: error types raised by this package's validators, used as the reply's ``code`` as they are
CUSTOM_CODES = ("invalid_value", "invalid_type", "unsupported_parameter", "invalid_json")
#: where FastAPI says a parameter came from (``("body", "temperature")``): not part of the parameter's name
_SOURCES = ("body", "query", "path", "header", "cookie")


class APIError(Exception):
    """An error reply: HTTP ``status`` and OpenAI's error object (``kind`` is its ``type``)."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        kind: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.headers = status, message, param, code, headers
        self.kind = kind or ("invalid_request_error" if status < 500 else "server_error")

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


def bad_request(message: str, param: str | None = None, code: str = "invalid_value") -> APIError:
    return APIError(400, message, param=param, code=code)


def _refuse_constant(name: str):
    raise bad_request(
        f"The request body holds {name}, which is not valid JSON: parameters must be finite numbers.",
        code="invalid_json",
    )


def read_json(raw: bytes) -> Any:
    """The JSON of a request body, strictly: ``NaN``, ``Infinity`` and ``-Infinity`` (which Python's and pydantic's
    parsers accept) are refused, so a non-finite number never reaches a batch. ``1e999`` reads as infinity: the
    protocol's float fields refuse it, naming the parameter."""
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise bad_request(f"The request body is not valid JSON: {e}", code="invalid_json") from None
    except RecursionError:
        raise bad_request("The request body is nested too deeply.", code="invalid_json") from None


def _where(loc: tuple) -> str:
    """``("messages", 0, "content")`` -> ``messages[0].content``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def from_validation_errors(errors: list[dict[str, Any]]) -> APIError:
    """A 400 for the first of pydantic's ``errors()`` (or FastAPI's): its parameter, a message naming it, a code.

    ``param`` is the top-level parameter (``messages`` for ``messages[0].role``), or the ``param`` a validator put in
    the error's context; the code is the validator's own error type, ``missing``, ``invalid_type`` or
    ``invalid_value``.
    """
    if not errors:
        return bad_request("The request is not valid.")
    error = errors[0]
    loc = tuple(error.get("loc") or ())
    if loc and loc[0] in _SOURCES:
        loc = loc[1:]
    kind = str(error.get("type", ""))
    ctx = error.get("ctx") or {}
    if kind == "model_type" and not loc:  # the body is not an object
        return bad_request("The request body must be a JSON object.", code="invalid_json")
    param = ctx.get("param") or (str(loc[0]) if loc else None)
    where = _where(loc) or param or "request"
    message = str(error.get("msg", "invalid value"))
    if message[:1].isupper() and not message[1:2].isupper():
        message = message[0].lower() + message[1:]
    if kind in CUSTOM_CODES:
        code = kind
    elif kind == "missing":
        code = "missing"
    elif kind.endswith(("_type", "_parsing")) or kind in ("literal_error", "union_tag_invalid"):
        code = "invalid_type"
    else:
        code = "invalid_value"
    text = message if kind in CUSTOM_CODES and message.startswith(where) else f"{where}: {message}"
    if kind not in CUSTOM_CODES and kind != "missing" and "input" in error:
        text += f", got {_shown(error['input'])}"
    return bad_request(text, param, code)
