"""Where ``cache.l2_backend`` becomes an object: the only module that knows every shared tier.

Kept out of ``tiers.py`` so the tiers and ``redis_tier.py`` never import each
other (``tests/test_import_graph.py`` holds the line); a new tier is one more
``case`` here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from neoc_assistant.cache.shared_tier import SharedTier
from neoc_assistant.settings import CacheSettings

if TYPE_CHECKING:
    from neoc_assistant.cache.redis_tier import RedisLink


def open_l2_tier(settings: CacheSettings, directory: Path, redis: RedisLink | None = None) -> SharedTier:
    """The shared tier ``settings.l2_backend`` names (``redis``: over the process's ``RedisLink``)."""
    match settings.l2_backend:
        case "disk":
            from neoc_assistant.cache.tiers import DiskTier

            return DiskTier(directory, size_limit_bytes=int(settings.l2_size_limit_mb) * (1 << 20),
                            ttl_seconds=float(settings.l2_ttl_seconds))
        case "redis":
            from neoc_assistant.cache.redis_tier import RedisTier

            if redis is None:
                raise ValueError("cache.l2_backend = redis needs the process's RedisLink")
            return RedisTier(redis, ttl_seconds=float(settings.l2_ttl_seconds))
    raise ValueError(f"unknown cache.l2_backend {settings.l2_backend!r}")  # pragma: no cover - Literal
