"""The assistant's routes (issue 8): its JSON API and its clinician page, as one router."""

from __future__ import annotations

from fastapi import APIRouter

from dxassist.web import assist_api, assist_pages

router = APIRouter()
router.include_router(assist_api.router)
router.include_router(assist_pages.router)
