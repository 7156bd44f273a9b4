"""Records of a CSV or JSON file read as its text arrives, a piece at a time, keeping only what is unread.

An upload is checked as it streams in (`POST /imports`), so neither the file nor its rows are
held whole. These readers turn text into numbered records and nothing more; what a record
must hold is `ticketing/importing.py`'s business. A whole file is read the same way, in one
piece, so a file gives the same records and the same format errors however it is cut.

- CSV: the standard `csv` reader over lines split as `open(newline="")` splits them. A record
  may span lines (a quoted cell with a line break); when the text received so far ends inside
  one, its lines are put back and read again once more text has come.
- JSON: a list of values, each decoded with `json.JSONDecoder.raw_decode` once it is whole.
"""

from __future__ import annotations

import csv
import json
import re
from collections import deque
from typing import Any

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)")
_SPACE = re.compile(r"[ \t\n\r]*")
_VALUE_START = frozenset('{["-0123456789tfn')
MAX_JSON_ROW_CHARS = 1024 * 1024  # a row still undecodable at this length is broken, not unfinished


class _NeedMore(Exception):
    """The text received so far ends inside a CSV record."""


class _Lines:
    """The lines `csv.reader` pulls: those received so far, and the ones of the record it is reading."""

    def __init__(self) -> None:
        self.ready: deque[str] = deque()
        self.taken: list[str] = []
        self.final = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.ready:
            line = self.ready.popleft()
            self.taken.append(line)
            return line
        if self.final:
            raise StopIteration
        raise _NeedMore


class CsvRecords:
    """Numbered CSV records after the header; a blank record is skipped but keeps its number.

    `header` is the first record once read; `error` the `csv` module's complaint, after which
    nothing more is read (the records before it stand, as a whole-file read gives them).
    """

    def __init__(self) -> None:
        self.header: list[str] | None = None
        self.error: str | None = None
        self._lines = _Lines()
        self._reader = csv.reader(self._lines)
        self._rest = ""
        self._number = 0

    def feed(self, text: str, *, final: bool = False) -> list[tuple[int, list[str]]]:
        if self.error is not None:
            return []
        buffer = self._rest + text
        end = 0
        for match in _LINE.finditer(buffer):
            if not final and match.end() == len(buffer) and buffer[-1] == "\r":
                break  # its "\n" may be the next piece's first character
            self._lines.ready.append(match.group())
            end = match.end()
        self._rest = buffer[end:]
        if final:
            if self._rest:
                self._lines.ready.append(self._rest)
                self._rest = ""
            self._lines.final = True
        return self._records()

    def _records(self) -> list[tuple[int, list[str]]]:
        records: list[tuple[int, list[str]]] = []
        while True:
            try:
                values = next(self._reader)
            except _NeedMore:  # read this record again when more text has come
                self._lines.ready.extendleft(reversed(self._lines.taken))
                self._lines.taken.clear()
                return records
            except StopIteration:
                return records
            except csv.Error as err:
                self.error = str(err)
                return records
            self._lines.taken.clear()
            if self.header is None:
                self.header = values
                continue
            self._number += 1
            if any(v.strip() for v in values):
                records.append((self._number, values))


class JsonRecords:
    """The numbered values of a JSON list (any JSON values: checking them is the caller's job).

    `error` says why the text is not a JSON list, in `json`'s words with the position in the
    whole text; nothing more is read after it. `not_a_list` marks a file that is some other
    JSON value.
    """

    def __init__(self) -> None:
        self.error: str | None = None
        self.not_a_list = False
        self._decoder = json.JSONDecoder()
        self._buffer = ""
        self._state = "start"  # start: before "["; first: a value or "]"; item: a value; sep: "," or "]"; end
        self._number = 0
        self._chars = 0  # characters dropped from the buffer's front, and where they leave the position
        self._lines = 0
        self._column = 0

    def feed(self, text: str, *, final: bool = False) -> list[tuple[int, Any]]:
        if self.error is not None or self.not_a_list:
            return []
        buffer = self._buffer + text
        records: list[tuple[int, Any]] = []
        at = 0
        while True:
            at = _SPACE.match(buffer, at).end()  # type: ignore[union-attr]
            if at == len(buffer):
                if final and self._state != "end":
                    self._fail(buffer, at, "Expecting ',' delimiter" if self._state == "sep" else "Expecting value")
                break
            char = buffer[at]
            if self._state == "start":
                if char == "[":
                    self._state, at = "first", at + 1
                elif char in _VALUE_START:
                    self.not_a_list = True
                    break
                else:
                    self._fail(buffer, at, "Expecting value")
                    break
            elif char == "]" and self._state in ("first", "sep"):
                self._state, at = "end", at + 1
            elif self._state in ("first", "item"):
                try:
                    value, end = self._decoder.raw_decode(buffer, at)
                except json.JSONDecodeError as err:
                    if not final and len(buffer) - at < MAX_JSON_ROW_CHARS:
                        break  # most likely unfinished: wait for more text
                    self._fail(buffer, err.pos, err.msg)
                    break
                if end == len(buffer) and not final:
                    break  # a number may go on in the next piece
                self._number += 1
                records.append((self._number, value))
                self._state, at = "sep", end
            elif self._state == "sep":
                if char != ",":
                    self._fail(buffer, at, "Expecting ',' delimiter")
                    break
                self._state, at = "item", at + 1
            else:
                self._fail(buffer, at, "Extra data")
                break
        self._drop(buffer, at)
        return records

    def _drop(self, buffer: str, at: int) -> None:
        newlines = buffer.count("\n", 0, at)
        if newlines:
            self._lines += newlines
            self._column = at - buffer.rfind("\n", 0, at) - 1
        else:
            self._column += at
        self._chars += at
        self._buffer = buffer[at:]

    def _fail(self, buffer: str, at: int, message: str) -> None:
        newlines = buffer.count("\n", 0, at)
        line = self._lines + newlines + 1
        column = at - buffer.rfind("\n", 0, at) if newlines else self._column + at + 1
        self.error = f"{message}: line {line} column {column} (char {self._chars + at})"
