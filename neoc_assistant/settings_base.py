"""What every settings section shares: the base model, the project root, URL-selected backends.

Kept apart so the sections can live in more than one module (``settings.py``,
``settings_answering.py``) without importing each other.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _select_by_url(section, field: str, remote: str, url: str | None, env_name: str):
    """A server's URL alone selects its backend (unless the backend was named); naming it needs the URL."""
    if url and field not in section.model_fields_set:
        setattr(section, field, remote)
    if getattr(section, field) == remote and not url:
        raise ValueError(f"{field} = {remote} needs its URL ({env_name})")
    return section


class _Section(BaseModel):
    # Unknown keys are ignored, as they were before the sections (a typo'd env var must not stop the server).
    model_config = ConfigDict(extra="ignore", validate_default=True)
