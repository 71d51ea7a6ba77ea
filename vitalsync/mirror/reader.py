"""A stream read in a Python process of its own, for the bulk of a full sync.

A full sync spends as much time reading and mapping the PMS's rows as writing them, and in one
process the GIL lets only one of the two run at a time: the reading thread's Python and the
writer's binding take turns, and only SQLite's own steps run beside them. A stream that says it
can be read elsewhere (``own_process``: it pickles, and opens its own connection to its source)
and is big (``estimated_rows``) is read here in a child process, on the machine's other core, and
its chunks come back pickled over a pipe (unpickling ~2,000 rows of text costs the parent well
under a millisecond).

The child is ``python -P -m vitalsync.mirror.reader``: it reads ``sys.path`` and then the stream,
the chunk size and the ``StoredForm`` from its stdin, and writes length-prefixed pickles to its
stdout: ("rows", chunk) ..., then ("end", the stream's rejected rows), or ("error", exception).
Its errors are raised in the parent as they were raised in the child (a ``RetryLater`` stays a
``RetryLater``); a child that dies without a word is a ``RetryLater``. Closing the parent's
generator kills the child. This module imports no SQLAlchemy: the child starts in ~0.1 s.
"""

from __future__ import annotations

import pickle
import struct
import subprocess
import sys
from typing import BinaryIO, Iterator

from vitalsync.core.errors import RetryLater
from vitalsync.sync.connector import StoredForm, stored_chunks

_LENGTH = struct.Struct("<Q")
#: a process costs ~0.1 s to start (Python, the driver, the connector's modules) and ~50-100 MB
#: while it reads: about what the parent spends on 20,000 rows, so smaller streams stay at home
ROWS_WORTH_A_PROCESS = 20_000


def worth_a_process(records) -> bool:
    """Whether ``records`` can be read in a process of its own and is big enough to pay for one."""
    return getattr(records, "own_process", False) and getattr(records, "estimated_rows", 0) >= ROWS_WORTH_A_PROCESS


def regrouped(chunks, size: int) -> Iterator[list]:
    """The rows of ``chunks`` in lists of exactly ``size`` (the last one fewer): a stream's chunks
    shrink where it skips rows, and the writer's many-row INSERTs take whole multiples fastest."""
    held: list = []
    for chunk in chunks:
        held += chunk
        while len(held) >= size:
            yield held[:size]
            del held[:size]
    if held:
        yield held


def read_elsewhere(records, size: int, form: StoredForm) -> Iterator[list[tuple]]:
    """``records`` as ``stored_chunks`` would give them, read in a child process."""
    # -P: the module comes from the installed package, never from a directory the daemon runs in
    child = subprocess.Popen([sys.executable, "-P", "-m", "vitalsync.mirror.reader"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        try:
            with child.stdin:
                pickle.dump(sys.path, child.stdin)
                pickle.dump((records, size, form), child.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        except BrokenPipeError:
            pass  # the child is gone already: its exit status is reported below
        while (message := _receive(child.stdout)) is not None:
            kind, payload = message
            if kind == "rows":
                yield payload
            elif kind == "end":
                _merge(getattr(records, "rejected", None), payload)
                return
            else:
                raise payload
        child.wait()
        raise RetryLater(f"the process reading the PMS ended without finishing (exit status {child.returncode})")
    finally:
        if child.poll() is None:
            child.kill()
        child.stdout.close()
        child.wait()


def _merge(rejected: list | None, found: list[str]) -> None:
    if rejected is not None:
        rejected.extend(reason for reason in found if reason not in rejected)


def _send(out: BinaryIO, message: tuple) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_LENGTH.pack(len(data)))
    out.write(data)


def _receive(stream: BinaryIO):
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (length,) = _LENGTH.unpack(head)
    data = stream.read(length)
    return pickle.loads(data) if len(data) == length else None


def main() -> None:
    source, out = sys.stdin.buffer, sys.stdout.buffer
    sys.path[:] = pickle.load(source)  # before the stream, whose classes are imported as it unpickles
    try:
        records, size, form = pickle.load(source)
        for chunk in regrouped(stored_chunks(records, size, form), size):
            _send(out, ("rows", chunk))
        _send(out, ("end", list(getattr(records, "rejected", None) or ())))
    except BaseException as exc:  # noqa: BLE001 - every failure goes to the parent, which raises it
        try:
            _send(out, ("error", exc))
        except Exception:  # an exception that does not pickle
            _send(out, ("error", RuntimeError(f"{type(exc).__name__}: {exc}")))
    out.flush()


if __name__ == "__main__":
    main()
