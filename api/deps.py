"""FastAPI dependencies: the settings and the shared services on app.state.

`async def` although nothing here awaits: FastAPI runs a plain `def` dependency in its thread
pool, and every suggestion paid that hand-off to a worker thread and back for a dictionary read.
"""

from __future__ import annotations

from fastapi import Request

from api.pipeline import Services
from api.settings import Settings


async def get_services(request: Request) -> Services:
    return request.app.state.services


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings
