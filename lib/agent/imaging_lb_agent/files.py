"""Files written so that a crash, a reboot or a full disk never leaves half of one: write a temporary file in
the same folder, flush and fsync it, check what landed, rename over the target, fsync the folder. An error at
any step (ENOSPC included) raises before the rename: the live file is untouched.
"""
from __future__ import annotations

import json
import os
import shutil
from typing import Any, Optional


def write_atomic(path: str, content: bytes, mode: int = 0o644) -> None:
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    tmp = f"{path}.imaging-lb-new"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, mode)
        if os.path.getsize(tmp) != len(content):
            raise OSError(f"{tmp}: wrote {os.path.getsize(tmp)} of {len(content)} bytes")
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_bytes(path: str) -> Optional[bytes]:
    try:
        with open(path, "rb") as file:
            return file.read()
    except FileNotFoundError:
        return None


def read_text(path: str) -> Optional[str]:
    data = read_bytes(path)
    return None if data is None else data.decode("utf-8", "replace")


def read_json(path: str) -> Optional[Any]:
    data = read_bytes(path)
    if data is None:
        return None
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError:
        return None


def write_json(path: str, document: Any, mode: int = 0o644) -> None:
    write_atomic(path, (json.dumps(document, sort_keys=True, indent=1) + "\n").encode(), mode)


def same_file(a: str, b: str) -> bool:
    """Same content and permission bits (both must exist)."""
    try:
        if os.stat(a).st_mode & 0o7777 != os.stat(b).st_mode & 0o7777:
            return False
    except FileNotFoundError:
        return False
    return read_bytes(a) == read_bytes(b)


def replace_dir(new: str, target: str, previous: Optional[str] = None) -> None:
    """Moves folder `new` to `target`; the old `target` becomes `previous` (or is removed)."""
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)
        if os.path.isdir(target):
            os.rename(target, previous)
    else:
        shutil.rmtree(target, ignore_errors=True)
    os.rename(new, target)
