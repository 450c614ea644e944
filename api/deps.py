"""FastAPI dependencies: the settings and the shared services on app.state."""

from __future__ import annotations

from fastapi import Request

from api.pipeline import Services
from api.settings import Settings


def get_services(request: Request) -> Services:
    return request.app.state.services


def get_settings(request: Request) -> Settings:
    return request.app.state.settings
