"""Safe resolution of user-given workspace paths, before any work is done with them.

Every path a request names (a mount target, a file to publish, a notebook) goes
through :func:`resolve_inside`: bounded in length and depth, no control
characters, no ``..``, and no symbolic link on the way that dangles, loops or
leads out of the workspace. Whatever is wrong is a :class:`BadRequest` naming the
field and the rule, never an ``OSError`` or ``RuntimeError`` surfacing as a 500.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path, PurePosixPath

from .errors import BadRequest

MAX_PATH_CHARS = 1024  # well under PATH_MAX (4096) once joined to the workspace root
MAX_SEGMENTS = 64
MAX_SEGMENT_BYTES = 255  # NAME_MAX of every common Linux filesystem


def check_path_text(value: object, field: str) -> str:
    """The lexical rules alone (type, length, depth, characters); returns the stripped text."""
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"'{field}' must be a non-empty path inside the workspace", field=field, rule="non-empty")
    text = value.strip()
    if any(ord(c) < 32 or c == "\x7f" for c in text):
        raise BadRequest(f"'{field}' contains control characters: not a path in the workspace", field=field, rule="no control characters")
    if len(text) > MAX_PATH_CHARS:
        raise BadRequest(f"'{field}' is longer than {MAX_PATH_CHARS} characters", field=field,
                         rule=f"at most {MAX_PATH_CHARS} characters")
    parts = [p for p in PurePosixPath(text).parts if p not in ("/", "", ".")]
    if len(parts) > MAX_SEGMENTS:
        raise BadRequest(f"'{field}' has more than {MAX_SEGMENTS} folder levels", field=field,
                         rule=f"at most {MAX_SEGMENTS} segments")
    for part in parts:
        try:
            size = len(part.encode())
        except UnicodeEncodeError:
            raise BadRequest(f"'{field}' is not valid text (lone surrogate)", field=field, rule="valid UTF-8") from None
        if size > MAX_SEGMENT_BYTES:
            raise BadRequest(f"a name in '{field}' is longer than {MAX_SEGMENT_BYTES} bytes", field=field,
                             rule=f"each name at most {MAX_SEGMENT_BYTES} bytes")
    if ".." in parts:
        raise BadRequest(f"{text!r} is not inside the workspace: '..' is not allowed in '{field}'", field=field, rule="no '..'")
    return text


def resolve_inside(
    root: str | os.PathLike, value: object, field: str, *, allow_absolute: bool = False, follow_last: bool = True
) -> Path:
    """The absolute, symlink-free path of ``value`` inside the workspace ``root``, or BadRequest.

    ``value`` is relative to ``root`` (or, with ``allow_absolute``, an absolute path
    under it). Missing trailing parts are allowed (a target to create); existing
    links on the way are followed only when they resolve, stay inside and do not loop.
    ``follow_last=False``: the last name is kept as it is (a mount target may be a link
    af-lab made), only the folders above it are resolved.
    """
    text = check_path_text(value, field)
    base = Path(root).resolve()
    pure = PurePosixPath(text)
    if pure.is_absolute():
        if not allow_absolute:
            raise BadRequest(f"{text!r} is not inside the workspace: '{field}' must be relative to it", field=field,
                             rule="relative path")
        try:
            pure = pure.relative_to(base.as_posix())
        except ValueError:
            raise BadRequest(f"{text!r} is outside the workspace", field=field, rule="inside the workspace") from None
    parts = [p for p in pure.parts if p not in ("", ".")]
    if not parts:
        raise BadRequest(f"'{field}' names the workspace itself", field=field, rule="a path below the workspace")
    lexical = base.joinpath(*parts)
    # Walk the existing prefix: every link on it must resolve (a dangling or looping link is refused).
    current = base
    for i, part in enumerate(parts):
        current = current / part
        if not follow_last and i == len(parts) - 1:
            break
        try:
            if not os.path.lexists(current):
                break
            if os.path.islink(current):
                os.stat(current)  # raises for a dangling or looping link
        except OSError as exc:
            rel = current.relative_to(base).as_posix()
            why = "loops" if exc.errno == errno.ELOOP else "dangles (its target does not exist)"
            raise BadRequest(f"{rel} is a symbolic link that {why}", field=field, rule="links must resolve") from None
    try:
        resolved = lexical.resolve() if follow_last else lexical.parent.resolve() / lexical.name
    except (OSError, RuntimeError):
        raise BadRequest(f"{text!r} cannot be resolved (a link loops or a name is too long)", field=field,
                         rule="links must resolve") from None
    if resolved != base and not resolved.is_relative_to(base):
        raise BadRequest(f"{text!r} leads outside the workspace through a symbolic link", field=field,
                         rule="inside the workspace")
    return resolved


# ---------------------------------------------------------------- private files
# Caches, databases and their SQLite -wal/-shm companions are the user's alone: 0600
# files in 0700 folders, whatever the process umask. (A cache shared by a group would be
# an explicit mode with its own group and 0750/0640, not a loose umask.)
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` (and missing parents) and make it 0700; returns it."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    os.chmod(path, PRIVATE_DIR)
    return path


def private_file(path: str | os.PathLike) -> Path:
    """Make ``path`` a 0600 file (created empty if missing) before anything is written to it; returns it."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, PRIVATE_FILE)
    os.close(fd)
    os.chmod(path, PRIVATE_FILE)
    return path


def private_sqlite(path: str | os.PathLike) -> Path:
    """Prepare a SQLite database file as 0600 *before* it is opened.

    SQLite creates ``-wal``/``-shm``/``-journal`` with the mode of the database file,
    so the database must be private before the first connection; companions left by an
    older version with a wider mode are narrowed too.
    """
    path = Path(path)
    private_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, PRIVATE_FILE)
    os.close(fd)
    for candidate in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal"))):
        try:
            os.chmod(candidate, PRIVATE_FILE, follow_symlinks=False)
        except FileNotFoundError:
            pass
        except NotImplementedError:  # no lchmod on Linux: never follow a link here
            if not os.path.islink(candidate):
                os.chmod(candidate, PRIVATE_FILE)
    return path


def signature(path: str | os.PathLike) -> tuple[int, int] | None:
    """(size, mtime_ns) of a file, or None if it is gone: the cheap "did it change?" check."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns
