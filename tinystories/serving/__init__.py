"""Serving a causal LM behind an OpenAI-compatible HTTP API (``tinystories serve``), batching concurrent requests
into one ``generate`` call."""

from .server import API_KEY_ENV, ServerThread, ServeSettings, build_app, main

__all__ = ["API_KEY_ENV", "ServeSettings", "ServerThread", "build_app", "main"]
