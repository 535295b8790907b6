#!/usr/bin/env python
"""Download a recommended GGUF chat model (on a connected machine) and verify it.

Why a script: the assistant itself never downloads anything (it runs offline
in the operations centre). Someone prepares the model on a connected machine,
checks it, and copies it to the laptop's ``models/`` folder (or a USB stick).

    python scripts/download_model.py --list
    python scripts/download_model.py qwen2.5-1.5b            # -> models/Qwen2.5-1.5B-Instruct-Q4_K_M.gguf
    python scripts/download_model.py qwen2.5-3b --dest /media/usb
    python scripts/download_model.py --url URL --sha256 HEX  # any other GGUF

Downloads resume (``.part`` file), show a progress bar, and the SHA-256 is
checked against the published checksum before the file gets its final name.
Offline, it fails within seconds with a clear message instead of hanging.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from neoc_assistant.errors import ModelError  # noqa: E402
from neoc_assistant.generate.model_file import RECOMMENDED_MODELS, inspect_gguf  # noqa: E402

CONNECT_TIMEOUT = 8.0
READ_TIMEOUT = 60.0
CHUNK = 1 << 20


class DownloadError(Exception):
    pass


def check_reachable(url: str) -> None:
    """Fail fast (seconds) when offline: DNS + TCP connect with a short timeout."""
    parts = urlparse(url)
    host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as exc:
        raise DownloadError(
            f"cannot reach {host} ({exc.__class__.__name__}: {exc}): this machine looks offline. "
            f"Run this script on a connected machine, copy the .gguf file into models/ (or a USB stick), "
            f"then check it with `python -m neoc_assistant models verify <file>`."
        ) from None


def download(url: str, dest: Path, sha256: str | None, *, quiet: bool = False) -> Path:
    from tqdm import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        print(f"{dest} already exists; verifying it instead of downloading")
        return verify(dest, sha256, quiet=quiet)
    check_reachable(url)
    part = dest.with_name(dest.name + ".part")
    hasher = hashlib.sha256()
    have = part.stat().st_size if part.exists() else 0
    if have:
        with open(part, "rb") as fh:
            for block in iter(lambda: fh.read(CHUNK), b""):
                hasher.update(block)
    req = urllib.request.Request(url, headers={"User-Agent": "neoc-assistant-downloader/1"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=READ_TIMEOUT)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # already complete
            resp = None
        else:
            raise DownloadError(f"download failed: HTTP {exc.code} {exc.reason} for {url}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DownloadError(f"download failed: {getattr(exc, 'reason', exc)} - check the network and retry") from None
    if resp is not None:
        with resp:
            if have and resp.status != 206:  # server ignored the range: start over
                have = 0
                hasher = hashlib.sha256()
                part.unlink(missing_ok=True)
            total = resp.length + have if resp.length is not None else None
            mode = "ab" if have else "wb"
            with open(part, mode) as out, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                               desc=dest.name, disable=quiet) as bar:
                while True:
                    try:
                        block = resp.read(CHUNK)
                    except (OSError, TimeoutError) as exc:
                        raise DownloadError(
                            f"download interrupted ({exc}); run the same command again to resume"
                        ) from None
                    if not block:
                        break
                    out.write(block)
                    hasher.update(block)
                    bar.update(len(block))
    digest = hasher.hexdigest()
    if sha256 and digest != sha256.lower():
        bad = part.with_name(part.name + ".bad")
        os.replace(part, bad)
        raise DownloadError(
            f"checksum mismatch for {dest.name}: got {digest}, expected {sha256} (kept as {bad.name}); "
            f"delete it and download again"
        )
    try:
        inspect_gguf(part)
    except ModelError as exc:
        raise DownloadError(str(exc)) from None
    os.replace(part, dest)
    print(f"saved {dest} ({dest.stat().st_size / 1e6:,.0f} MB), sha256 {digest}"
          + (" - matches the published checksum" if sha256 else " - no published checksum to compare"))
    return dest


def verify(path: Path, sha256: str | None, *, quiet: bool = False) -> Path:
    from tqdm import tqdm

    try:
        info = inspect_gguf(path)
    except ModelError as exc:
        raise DownloadError(str(exc)) from None
    hasher = hashlib.sha256()
    with open(path, "rb") as fh, tqdm(total=info.file_size, unit="B", unit_scale=True, desc="sha256",
                                      disable=quiet) as bar:
        for block in iter(lambda: fh.read(CHUNK * 8), b""):
            hasher.update(block)
            bar.update(len(block))
    digest = hasher.hexdigest()
    if sha256 and digest != sha256.lower():
        raise DownloadError(f"{path} has sha256 {digest}, expected {sha256}: delete it and download again")
    print(f"{path}: OK, sha256 {digest}")
    return path


def main(argv: list[str] | None = None) -> int:
    keys = [m.key for m in RECOMMENDED_MODELS]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?", choices=keys, help="recommended model to download")
    ap.add_argument("--list", action="store_true", help="list the recommended models")
    ap.add_argument("--dest", type=Path, default=REPO_ROOT / "models", help="folder to save into (default: models/)")
    ap.add_argument("--url", help="download this GGUF URL instead of a recommended one")
    ap.add_argument("--sha256", help="expected SHA-256 for --url")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)

    if args.list or (not args.model and not args.url):
        for m in RECOMMENDED_MODELS:
            print(f"{m.key:14} {m.filename:40} ~{m.approx_size_mb:>5,} MB  {m.ram_hint}")
            print(f"{'':14} {m.url}")
            print(f"{'':14} sha256 {m.sha256 or 'NOT VERIFIED - compare with the source page'}")
        return 0
    try:
        if args.url:
            name = Path(urlparse(args.url).path).name or "model.gguf"
            download(args.url, args.dest / name, args.sha256, quiet=args.quiet)
        else:
            m = next(m for m in RECOMMENDED_MODELS if m.key == args.model)
            if not m.sha256:
                print(f"warning: no verified checksum for {m.filename}; compare the printed sha256 with the source",
                      file=sys.stderr)
            download(m.url, args.dest / m.filename, m.sha256, quiet=args.quiet)
    except DownloadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
