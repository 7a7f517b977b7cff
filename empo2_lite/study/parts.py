"""Split a file into parts that each fit one device call, and put it back together, checked.

Why: the GPU machine reaches no network, and one call to it carries at most 64 MiB, the working
tree (~6 MiB) included. The embedded model's GGUF (SmolLM2-135M-Instruct, Q4_1, 93.8 MiB; see
``empo2_lite/policy/default_model.py``) fits no single call, so it travels in parts, each in its
own ignored folder carried by its own call, and what an earlier call carried stays on the warm
machine (docs/gpu-study.md). Every part folder holds its part and the manifest (the name, size and
SHA-256 of the whole file and of each part), so that ``join`` says which part is missing or
damaged, in one line, before anything is trained on a wrong model::

    python -m empo2_lite.study.parts split                 # the embedded GGUF -> .gguf-part-1/, .gguf-part-2/
    python -m empo2_lite.study.parts join .gguf-part-*     # -> $EMPO2_CACHE/downloads/<the GGUF>, verified

Exit status 2 and one line on stderr for a missing, damaged or foreign part. The study packs its
archive with the same split when it is larger than a call brings back (``report.pack``); the
device machine's side of a study is ``scripts/device_study.sh``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_PREFIX = Path(".gguf-part")
"""Part folders are ``.gguf-part-1``, ``.gguf-part-2``, ... in the current folder (the repo root:
ignored by git)."""
DEFAULT_MAX_MIB = 47.0
"""Two parts of the 93.8 MiB GGUF, 46.9 MiB each: with the working tree, under a call's 64 MiB."""
MANIFEST = "manifest.json"
CHUNK = 1 << 20


class PartsError(Exception):
    """A part that is missing, damaged or from another split; the message is one line."""


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def split_file(source: Path, prefix: Path = DEFAULT_PREFIX, max_bytes: int = int(DEFAULT_MAX_MIB * 2**20)) -> dict:
    """Write ``source`` as the fewest parts of at most ``max_bytes`` each, of equal size but the
    last, into folders ``<prefix>-1``, ``<prefix>-2``, ... beside the manifest (part folders of an
    earlier split under the same prefix are removed first, so that a glob finds only this split's).
    Returns the manifest."""
    size = source.stat().st_size
    count = max(1, math.ceil(size / max_bytes))
    part_bytes = math.ceil(size / count)
    for stale in prefix.parent.glob(f"{prefix.name}-*"):
        if (stale / MANIFEST).exists():
            shutil.rmtree(stale)
    folders = [prefix.parent / f"{prefix.name}-{index}" for index in range(1, count + 1)]
    parts = []
    with open(source, "rb") as whole:
        for index, folder in enumerate(folders, start=1):
            folder.mkdir(parents=True)
            path = folder / f"{source.name}.part{index}"
            path.write_bytes(whole.read(part_bytes))
            parts.append({"folder": folder.name, "file": path.name, "bytes": path.stat().st_size,
                          "sha256": sha256_of(path)})
    manifest = {"name": source.name, "bytes": size, "sha256": sha256_of(source), "parts": parts}
    for folder in folders:
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def join_parts(folders: Sequence[Path], target: Path) -> Path:
    """Put the parts in ``folders`` (any order) back together as ``target``, every part and the
    whole checked against the manifest; a ``target`` that already holds the whole is kept as is.
    Raises PartsError naming the part that is missing, damaged or from another split."""
    manifests = {}
    for folder in folders:
        path = Path(folder) / MANIFEST
        if not path.is_file():
            raise PartsError(f"{folder}: no {MANIFEST}; give the folders written by `python -m empo2_lite.study.parts split`")
        manifests[Path(folder)] = json.loads(path.read_text())
    if not manifests:
        raise PartsError("no part folder given; give the folders written by `python -m empo2_lite.study.parts split`")
    manifest = next(iter(manifests.values()))
    foreign = [str(folder) for folder, other in manifests.items() if other["sha256"] != manifest["sha256"]]
    if foreign:
        raise PartsError(f"{', '.join(foreign)}: from another split than {next(iter(manifests))}; split once and "
                         "carry all of its parts")
    if target.is_file() and target.stat().st_size == manifest["bytes"] and sha256_of(target) == manifest["sha256"]:
        return target
    given = {folder.name: folder for folder in manifests}
    count = len(manifest["parts"])
    for index, part in enumerate(manifest["parts"], start=1):
        folder = given.get(part["folder"])
        path = folder / part["file"] if folder is not None else None
        if path is None or not path.is_file():
            raise PartsError(f"part {index} of {count} of {manifest['name']} is missing ({part['folder']}/"
                             f"{part['file']}); carry {part['folder']} in a call before this one (docs/gpu-study.md)")
        if path.stat().st_size != part["bytes"] or sha256_of(path) != part["sha256"]:
            raise PartsError(f"part {index} of {count} of {manifest['name']} is damaged ({path}: size or SHA-256 "
                             "differs from the manifest); split again and carry it again")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    with open(partial, "wb") as whole:
        for part in manifest["parts"]:
            with open(given[part["folder"]] / part["file"], "rb") as piece:
                shutil.copyfileobj(piece, whole, CHUNK)
    if sha256_of(partial) != manifest["sha256"]:
        partial.unlink()
        raise PartsError(f"{manifest['name']}: the joined parts do not give the SHA-256 of the manifest")
    os.replace(partial, target)
    return target


def embedded_gguf(fetch: bool) -> Path:
    """Where the kit looks for the embedded model's GGUF (``fetch``: downloaded first if missing).
    Imported here, not at the top: the kit's policy package loads torch (seconds)."""
    from empo2_lite.policy.default_model import GGUF_NAME, cache_dir, ensure_gguf

    return ensure_gguf() if fetch else cache_dir() / "downloads" / GGUF_NAME


def main(argv: list[str] | None = None) -> int:
    """``split`` (the embedded GGUF by default) or ``join`` (into the kit's cache by default)."""
    parser = argparse.ArgumentParser(prog="python -m empo2_lite.study.parts", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    split = commands.add_parser("split", help="write a file as parts, each in its own folder")
    split.add_argument("file", nargs="?", help="the file (default: the embedded model's GGUF, fetched once if needed)")
    split.add_argument("--prefix", default=str(DEFAULT_PREFIX), help="part folders are PREFIX-1, PREFIX-2, ...")
    split.add_argument("--max-mib", type=float, default=DEFAULT_MAX_MIB, help="largest part, MiB")
    join = commands.add_parser("join", help="put the parts back together, checked")
    join.add_argument("folders", nargs="*", help="the part folders")
    join.add_argument("--to", help="the file to write (default: the embedded GGUF's place in the kit's cache)")
    args = parser.parse_args(argv)
    try:
        if args.command == "split":
            source, prefix = Path(args.file) if args.file else embedded_gguf(fetch=True), Path(args.prefix)
            for part in split_file(source, prefix, int(args.max_mib * 2**20))["parts"]:
                print(f"{prefix.parent / part['folder']}: {part['bytes'] / 2**20:.1f} MiB")
        else:
            target = Path(args.to) if args.to else embedded_gguf(fetch=False)
            print(f"joined: {join_parts([Path(folder) for folder in args.folders], target)}")
    except PartsError as error:
        print(f"parts: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
