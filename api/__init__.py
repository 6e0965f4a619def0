"""The HTTP API: `/ask`, an OpenAI-compatible `/v1`, and `/health`."""

from api.app import create_app

__all__ = ["create_app"]
