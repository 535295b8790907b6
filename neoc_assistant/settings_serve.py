"""The settings sections of serving: the web server and its API (``serve``) and the audit trail (``audit``).

Part of the one ``Settings`` object (``settings.py``); in their own module only to keep each file short.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from neoc_assistant.settings_base import _Section


class ServeSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=7860, ge=0, le=65535)
    auth_username: str | None = None
    auth_password: str | None = None
    upload_max_mb: int = Field(default=50, ge=1)
    max_question_chars: int = Field(default=2000, ge=10)
    max_request_body_kb: int = Field(
        default=1024, ge=16, description="Largest request body (JSON API, UI events; not file uploads) read.")
    login_free_attempts: int = Field(
        default=5, ge=1, description="Wrong passwords from one address before each retry must wait.")
    login_backoff_max_seconds: float = Field(
        default=300.0, ge=1.0, description="Longest wait after repeated wrong passwords (doubles from 1 s).")
    api_max_running: int = Field(
        default=16, ge=1, description="/api/ask and /v1 questions the cache did not answer, answered at once (on "
                                      "their own threads; beyond the model's slots they get quotes at once). At 4, "
                                      "a 50-user run got 503 for 25 % of its requests; at 16, none (README).")
    max_waiting: int = Field(
        default=256, ge=0, description="Most questions that may wait for an answer slot (API, and the UI's own "
                                       "line); more get 'busy, try again in N s' (HTTP 503 + Retry-After).")
    max_wait_seconds: float = Field(
        default=30.0, gt=0, description="Longest expected (and actual) wait for an /api/ask slot; a question that "
                                        "would wait longer is answered 503 + Retry-After at once.")
    malloc_arenas: int = Field(
        default=2, ge=0, description="Most glibc malloc heaps the server keeps (fewer = less memory held by its "
                                     "request threads; runtime.cap_malloc_arenas); 0: glibc's default (8 per core).")
    ui_language: Literal["en", "ne"] = Field(
        default="en", description="Language of the UI's labels, buttons and messages: en (English) or ne (Nepali). "
                                  "An answer's notices follow the question's language whatever this says.")
    api_keys: dict[str, str] = Field(
        default_factory=dict, description="Bearer keys of the OpenAI-compatible API (/v1/...): name -> 'sha256:<hex>' "
                                          "(`apikey new NAME` makes one); the name is what the audit trail records.")


class AuditSettings(_Section):
    enabled: bool = Field(default=True, description="Record every answer in the append-only audit trail.")
    retention_days: int = Field(
        default=0, ge=0, description="Delete the trail's monthly files whose newest record is older than this "
                                     "(0: keep everything).")
