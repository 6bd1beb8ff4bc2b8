"""The web service: JSON API, server-rendered pages and static files (FastAPI).

Routes are thin: they check who is asking, call the store, ingest and jobs rooms, and
turn dxassist's errors into 4xx responses with a JSON body that says what to fix.
"""

from __future__ import annotations

from dxassist.web.app import create_app

__all__ = ["create_app"]
