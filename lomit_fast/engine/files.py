"""The files of a translate job: which inputs, which output names, what the outputs were made with.

- Inputs: a folder (walked, sub-folders kept, symlinked folders followed once, a symlink loop or
  a dangling link reported by name and skipped), a glob, or a text file listing paths.
- Output names: <output>/<path below the input folder>.png, masks beside it as <stem>_mask_in.png
  and <stem>_mask_ex.png. Every name is unique across images and masks: where two would meet
  (a.png and a.jpg, or x.png's mask and an input x_mask_in.png) the later one is numbered
  (a_1.png). No output name is ever an input's path.
- The manifest (<output>/manifest.json) records what the outputs were made with: model, exemplars,
  masks and the settings that change pixels. A rerun with other settings is refused, unless
  --overwrite says to translate everything again; a rerun with the same settings resumes.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..data.images import IMAGE_SUFFIXES
from ..io import atomic_path

MASK_SUFFIXES = ("_mask_in", "_mask_ex")
MANIFEST = "manifest.json"


@dataclass
class Inputs:
    files: list[Path]
    roots: list[Path | None]              # the folder each was listed from (keeps sub-paths)
    problems: list[tuple[Path, str]]      # entries that cannot be read as files, with why


def _walk(folder: Path, exclude: str) -> Inputs:
    """Image files below `folder`, following symlinked folders but never into a cycle."""
    found, problems, seen = [], [], set()
    for top, dirs, files in os.walk(folder, followlinks=True):
        real, st = os.path.realpath(top), os.stat(top)
        key = st.st_ino, st.st_dev
        if key in seen or real == exclude or real.startswith(exclude + os.sep):
            dirs[:] = []  # a folder met twice (symlink cycle) or the output folder
            continue
        seen.add(key)
        for name in sorted(dirs):
            path = Path(top) / name
            try:
                os.stat(path)
            except OSError as e:  # symlink loop or dangling link named like a folder
                dirs.remove(name)
                problems.append((path, f"cannot be followed ({e.strerror})"))
        for name in sorted(files):
            path = Path(top) / name
            try:
                os.stat(path)
            except OSError as e:  # a symlink loop or a dangling link (os.walk lists it here)
                problems.append((path, f"cannot be read ({e.strerror})"))
                continue
            if path.suffix.lower() in IMAGE_SUFFIXES:
                found.append(path)
    return Inputs(sorted(found), [folder] * len(found), problems)


def list_inputs(spec: str, output: Path) -> Inputs:
    """Images named by a folder, a glob pattern or a text file with one path per line."""
    path = Path(spec)
    out = os.path.realpath(output)
    if path.is_dir():
        if os.path.realpath(path) == out:
            raise ValueError(f"--output {output} is the input folder: choose another folder "
                             "(inputs are never written to)")
        return _walk(path, out)
    if path.is_file() and path.suffix.lower() in (".txt", ".lst"):
        try:
            lines = [s.strip() for s in path.read_text(encoding="utf-8").splitlines()]
        except UnicodeDecodeError as e:
            raise ValueError(f"--input {spec}: a list file must be UTF-8 text ({e.reason} at "
                             f"byte {e.start})") from None
        files = [Path(s) for s in lines if s and not s.startswith("#")]
        return Inputs(files, [None] * len(files), [])
    if path.is_file():
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise ValueError(f"--input {spec}: not an image ({', '.join(sorted(IMAGE_SUFFIXES))}), "
                             "a folder, a .txt list or a glob pattern")
        return Inputs([path], [None], [])
    files = sorted(Path(p) for p in glob.glob(spec, recursive=True)
                   if Path(p).suffix.lower() in IMAGE_SUFFIXES and Path(p).is_file())
    if not files:
        raise ValueError(f"--input {spec}: no such folder, list file or matching images")
    return Inputs(files, [None] * len(files), [])


def output_names(inputs: Inputs, output: Path, with_masks: bool) -> list[Path]:
    """One unique output PNG per input (see the module docstring for the rule)."""
    taken = {os.path.realpath(p) for p in inputs.files}  # never write over an input
    names = []
    for path, root in zip(inputs.files, inputs.roots):
        rel = path.relative_to(root).with_suffix("") if root else Path(path.stem)
        candidate, k = rel, 0
        while True:
            group = [output / f"{candidate}.png"]
            if with_masks:
                group += [output / f"{candidate}{s}.png" for s in MASK_SUFFIXES]
            if not any(os.path.realpath(p) in taken for p in group):
                break
            k += 1
            candidate = rel.with_name(f"{rel.name}_{k}")
        taken.update(os.path.realpath(p) for p in group)
        names.append(group[0])
    return names


def mask_names(name: Path) -> list[Path]:
    stem = name.with_suffix("")
    return [Path(f"{stem}{s}.png") for s in MASK_SUFFIXES]


def remove_stale_temporaries(names: list[Path]) -> int:
    """Delete the temporary files a killed run left for these outputs (atomic_path's pattern
    .<stem>.<8 random>.tmp.png, exactly): each rank cleans only its own names."""
    removed = 0
    by_folder: dict[Path, set[str]] = {}
    for name in names:
        by_folder.setdefault(name.parent, set()).add(name.stem)
    pattern = re.compile(r"^\.(.+)\.[a-z0-9_]{8}\.tmp\.png$")
    for folder, stems in by_folder.items():
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            match = pattern.match(entry.name)
            if match and match.group(1) in stems and entry.is_file():
                entry.unlink(missing_ok=True)
                removed += 1
    return removed


def digest(paths: list[Path | None]) -> str:
    """sha256 over the bytes of files (a folder: its files' names, sizes and times)."""
    h = hashlib.sha256()
    for path in paths:
        if path is None:
            h.update(b"-")
        elif path.is_dir():
            for p in sorted(path.rglob("*")):
                if p.is_file():
                    st = p.stat()
                    h.update(f"{p.relative_to(path)}:{st.st_size}:{st.st_mtime_ns}".encode())
        else:
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


def check_manifest(output: Path, settings: dict, overwrite: bool) -> None:
    """Refuse to mix outputs of other settings into this folder (unless overwriting)."""
    path = output / MANIFEST
    if overwrite or not path.is_file():
        return
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        raise ValueError(f"{path}: unreadable manifest; pass --overwrite to translate "
                         "everything again") from None
    changed = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
    if changed:
        raise ValueError(f"--output {output} holds outputs made with other settings "
                         f"({', '.join(changed)} changed): choose another folder, or pass "
                         "--overwrite to translate everything again")


def write_manifest(output: Path, settings: dict) -> None:
    with atomic_path(output / MANIFEST) as tmp:
        tmp.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")
