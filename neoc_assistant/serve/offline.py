"""Environment for an offline Gradio: import this before ``gradio``.

Gradio reads these at import/launch time. Analytics are forced off (they would
phone home); the Hugging Face hub is kept offline; run history (a footer link
and a local store we do not need) is off.
"""

from __future__ import annotations

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("GRADIO_RUN_HISTORY", "False")
os.environ.setdefault("GRADIO_SSR_MODE", "False")
os.environ.setdefault("DO_NOT_TRACK", "1")


def set_temp_dir(path) -> None:
    """Keep Gradio's upload temp files next to our data (must run before gradio is imported)."""
    os.environ.setdefault("GRADIO_TEMP_DIR", str(path))
