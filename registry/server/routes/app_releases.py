"""REST resources: app_releases (being written)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
