"""Unpack a student's .zip without trusting it: no path outside the target, no links, capped size, count and ratio."""
from __future__ import annotations

import dataclasses
import os
import shutil
import stat
import time
import zipfile
import zlib
from pathlib import Path, PurePosixPath

CHUNK = 1 << 16


class ArchiveError(ValueError):
    """The archive is unsafe or unreadable; ``str()`` tells the student why in one line."""


@dataclasses.dataclass(frozen=True)
class ArchiveLimits:
    """Caps on what one archive may expand to; measured on the bytes really written, not on the header's claims."""

    max_bytes: int = 100 << 20     # a week of CNN exercises is a few hundred kB of code
    max_files: int = 1000
    max_ratio: float = 100.0       # uncompressed / compressed per member, past the slack below
    ratio_slack: int = 1 << 20     # small members compress well legitimately (a 1 MiB run of zeros is fine)


def _member_path(info: zipfile.ZipInfo) -> PurePosixPath | None:
    """The member's relative path, or ArchiveError when it points outside the target; None to skip it."""
    raw = info.filename.replace("\\", "/")
    path = PurePosixPath(raw)
    if raw.startswith("/") or (len(raw) > 1 and raw[1] == ":"):
        raise ArchiveError(f"it holds an absolute path ({info.filename!r})")
    if ".." in path.parts:
        raise ArchiveError(f"it holds a path that leaves its folder ({info.filename!r})")
    if not path.parts or path.parts[0] == "__MACOSX" or path.name == ".DS_Store":
        return None
    return path


def _is_link(info: zipfile.ZipInfo) -> bool:
    mode = info.external_attr >> 16
    return stat.S_ISLNK(mode)


def safe_extract(archive: Path, target: Path, limits: ArchiveLimits = ArchiveLimits()) -> list[Path]:
    """Extract ``archive`` into ``target``; on any problem nothing stays behind and ArchiveError says why."""
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            if len(members) > limits.max_files:
                raise ArchiveError(f"it holds {len(members)} entries (at most {limits.max_files})")
            total = 0
            for info in members:
                rel = _member_path(info)
                if rel is None:
                    continue
                if _is_link(info):
                    raise ArchiveError(f"it holds a symbolic link ({info.filename!r}); hand in real files")
                dest = target.joinpath(*rel.parts)
                if info.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                if dest.exists() or dest.is_symlink():
                    raise ArchiveError(f"it holds {info.filename!r} twice")
                total = _copy_member(zf, info, dest, total, limits)
                _keep_time(dest, info)
                written.append(dest)
    except ArchiveError:
        _clear(target)
        raise
    # zlib.error: a damaged member; RuntimeError: an encrypted one; NotImplementedError: an unknown compression.
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, RuntimeError, zlib.error) as exc:
        _clear(target)
        raise ArchiveError(f"it is not a readable .zip ({exc})") from None
    except OSError as exc:
        _clear(target)
        raise ArchiveError(f"it could not be unpacked ({exc.strerror or exc})") from None
    except Exception as exc:  # noqa: BLE001 - a malformed archive nobody foresaw (odd names, headers): refused whole
        _clear(target)
        raise ArchiveError(f"it could not be unpacked ({type(exc).__name__})") from None
    return written


def _copy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, total: int, limits: ArchiveLimits) -> int:
    """Stream one member to disk, counting the bytes it really expands to (headers can lie)."""
    size = 0
    allowed = max(limits.ratio_slack, info.compress_size * limits.max_ratio)
    with zf.open(info) as src, open(dest, "xb") as out:
        while chunk := src.read(CHUNK):
            size += len(chunk)
            total += len(chunk)
            if total > limits.max_bytes:
                raise ArchiveError(f"it expands past {limits.max_bytes >> 20} MiB")
            if size > allowed:
                raise ArchiveError(f"{info.filename!r} expands more than {limits.max_ratio:g} times its packed size "
                                   "(a zip bomb?)")
            out.write(chunk)
    return total


def _keep_time(dest: Path, info: zipfile.ZipInfo) -> None:
    """Give the file its time in the archive: of a .py and .ipynb both edited, the one saved last is graded."""
    try:
        stamp = time.mktime((*info.date_time, 0, 0, -1))
        os.utime(dest, (stamp, stamp))
    except (ValueError, OverflowError, OSError):
        pass   # a date the archive made up (month 0, year 1980 on odd tools): the unpacking time stays


def _clear(target: Path) -> None:
    """Remove whatever a failed extraction left, so half an archive is never graded."""
    shutil.rmtree(target, ignore_errors=True)
