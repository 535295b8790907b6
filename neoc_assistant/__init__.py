"""NEOC Assistant: offline question answering over an Emergency Operations Centre's own documents."""

import os

# Set before torch loads its OpenMP runtime: llama.cpp threads spin briefly instead of
# for ~300k iterations, which otherwise collapses decode speed when cores are shared.
os.environ.setdefault("GOMP_SPINCOUNT", "1000")

__version__ = "0.1.0"
