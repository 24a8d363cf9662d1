"""Deterministic benchmark data: sequencing-run trees and one large file.

Everything is derived from a seed, so two machines (or two runs) audit the
same bytes under the same names.  Each data set lives in its own folder with a
stamp file beside it (never inside, so the stamp is not audited); a data set is
regenerated only when its folder or stamp is absent or the stamp's parameters
differ.  The stamp is written last: an interrupted generation is redone.

File contents are slices of a pseudo-random pool (incompressible, like
``fastq.gz``), each file starting with a gzip header and its own index so no
two files are equal.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

#: Bump when the layout or content rules change: old data is regenerated.
GENERATOR = 1
POOL_BYTES = 64 << 20
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"
FLAT_FOLDER_FILES = 200


@dataclass(frozen=True)
class TreeSpec:
    """A tree of ``files`` files with log-normal sizes summing to about ``total``."""

    name: str
    files: int
    total: int
    sigma: float
    #: "fastq" (runs/projects/samples), "bcl" (runs/lanes/cycles/tiles) or
    #: "flat" (folders of 200 files directly below the root)
    layout: str
    seed: int


@dataclass(frozen=True)
class FileSpec:
    """One file of ``size`` bytes (in a folder of its own)."""

    name: str
    size: int
    seed: int


@dataclass
class DataSet:
    path: Path
    files: int
    bytes: int
    generated: bool
    #: folders that hold files
    folders: int = 1


def _stamp_path(root: Path, name: str) -> Path:
    return root / f"{name}.stamp.json"


def _stamp_ok(root: Path, spec: TreeSpec | FileSpec) -> DataSet | None:
    stamp = _stamp_path(root, spec.name)
    folder = root / spec.name
    if not stamp.is_file() or not folder.is_dir():
        return None
    try:
        recorded = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return None
    if recorded.get("generator") != GENERATOR or recorded.get("spec") != asdict(spec):
        return None
    return DataSet(folder, int(recorded["files"]), int(recorded["bytes"]), generated=False,
                   folders=_folders(spec) if isinstance(spec, TreeSpec) else 1)


def _write_stamp(root: Path, spec: TreeSpec | FileSpec, files: int, total: int) -> None:
    stamp = _stamp_path(root, spec.name)
    tmp = stamp.with_suffix(".tmp")
    tmp.write_text(json.dumps({"generator": GENERATOR, "spec": asdict(spec),
                               "files": files, "bytes": total}, indent=1) + "\n")
    tmp.replace(stamp)


def _pool(seed: int) -> bytes:
    return random.Random(f"pool-{seed}").randbytes(POOL_BYTES)


def _write(path: Path, size: int, index: int, pool: bytes, rng: random.Random) -> None:
    head = (GZIP_HEADER + index.to_bytes(8, "little"))[:size]
    with open(path, "wb", buffering=0) as handle:
        handle.write(head)
        left = size - len(head)
        while left > 0:
            take = min(left, len(pool) // 2)
            start = rng.randrange(len(pool) - take + 1)
            handle.write(memoryview(pool)[start:start + take])
            left -= take


def _sizes(spec: TreeSpec) -> list[int]:
    rng = random.Random(f"sizes-{spec.seed}-{spec.name}")
    raw = [rng.lognormvariate(0.0, spec.sigma) for _ in range(spec.files)]
    scale = spec.total / sum(raw)
    return [max(64, round(value * scale)) for value in raw]


def _fastq_names(count: int) -> Iterator[str]:
    """runs / project / sample / one fastq.gz per lane and read, like bcl2fastq."""
    for i in range(count):
        sample, rest = divmod(i, 8)
        lane, read = rest // 2 + 1, rest % 2 + 1
        run = sample // 250
        project = 12000 + run * 7
        flowcell = f"{'ABCDEFGHJK'[run % 10]}H{(run * 7919) % 10000:04d}DSX{run % 10}"
        yield (f"{230101 + run * 3:06d}_A00181_{101 + run:04d}_{flowcell}/Unaligned/"
               f"Project_P{project}/Sample_P{project}_{1001 + sample % 250}/"
               f"P{project}_{1001 + sample % 250}_S{sample % 250 + 1}_L00{lane}_R{read}_001"
               f".fastq.gz")


def _bcl_names(count: int) -> Iterator[str]:
    """runs / lane / cycle / one bcl per tile (100 files per folder), like a sequencer."""
    for i in range(count):
        rest, tile = divmod(i, 100)
        rest, cycle = divmod(rest, 250)
        run, lane = divmod(rest, 4)
        yield (f"run{run:03d}/Data/Intensities/BaseCalls/L00{lane + 1}/C{cycle + 1}.1/"
               f"s_{lane + 1}_{1101 + tile}.bcl.gz")


def _flat_names(count: int) -> Iterator[str]:
    """Folders of FLAT_FOLDER_FILES files each, directly below the root."""
    for i in range(count):
        folder, index = divmod(i, FLAT_FOLDER_FILES)
        yield f"sample{folder:03d}/reads_{index:03d}.fastq.gz"


LAYOUTS = {"fastq": _fastq_names, "bcl": _bcl_names, "flat": _flat_names}


def _folders(spec: TreeSpec) -> int:
    return len({name.rpartition("/")[0] for name in LAYOUTS[spec.layout](spec.files)})


def ensure_tree(root: Path, spec: TreeSpec, log: bool = True) -> DataSet:
    done = _stamp_ok(root, spec)
    if done:
        return done
    folder = root / spec.name
    if log:
        print(f"generating {folder} ({spec.files:,} files, about {spec.total / 1e6:,.0f} MB, "
              f"seed {spec.seed}) ...", flush=True)
    _stamp_path(root, spec.name).unlink(missing_ok=True)
    shutil.rmtree(folder, ignore_errors=True)
    pool = _pool(spec.seed)
    rng = random.Random(f"content-{spec.seed}-{spec.name}")
    names = LAYOUTS[spec.layout]
    made: set[Path] = set()
    total = 0
    for index, (relpath, size) in enumerate(zip(names(spec.files), _sizes(spec), strict=True)):
        path = folder / relpath
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        _write(path, size, index, pool, rng)
        total += size
    _write_stamp(root, spec, spec.files, total)
    return DataSet(folder, spec.files, total, generated=True, folders=len(made))


def ensure_file(root: Path, spec: FileSpec, log: bool = True) -> DataSet:
    done = _stamp_ok(root, spec)
    if done:
        return done
    folder = root / spec.name
    if log:
        print(f"generating {folder}/{spec.name}.bin ({spec.size / 2**30:.2f} GiB, "
              f"seed {spec.seed}) ...", flush=True)
    _stamp_path(root, spec.name).unlink(missing_ok=True)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    _write(folder / f"{spec.name}.bin", spec.size, 0, _pool(spec.seed),
           random.Random(f"content-{spec.seed}-{spec.name}"))
    _write_stamp(root, spec, 1, spec.size)
    return DataSet(folder, 1, spec.size, generated=True)


def warm(folder: Path) -> int:
    """Read every file once so the timed runs start from a warm page cache."""
    total = 0
    buffer = bytearray(1 << 20)
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            with open(os.path.join(dirpath, name), "rb", buffering=0) as handle:
                while got := handle.readinto(buffer):
                    total += got
    return total


def human_bytes(count: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(count) < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count} B"  # pragma: no cover


def gib(count: int) -> str:
    return f"{count / 2**30:.2f} GiB" if count >= 2**30 else f"{count / 2**20:.0f} MiB"

