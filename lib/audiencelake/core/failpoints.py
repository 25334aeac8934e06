"""Fault injection: stop a run at a chosen point, as a kill would leave the lake.

`AUDIENCELAKE_FAIL_AFTER=<point>[:n]` stops the process when it reaches `point` for the n-th time (default 1) by
raising `InjectedFault`, a `BaseException` no handler of the project catches. The points:

- `<layer>.<table>`: right after a Delta commit to the table. A kill can only leave a Delta table at a commit
  (files of an unfinished write are never read), so stopping after each commit in turn reaches every state a kill
  can leave.
- `export.<destination>.<audience>`: an export's files and manifest are complete in their staging folder and not
  yet moved into place.

Unset (always, outside tests), `reached` does nothing.
"""

from __future__ import annotations

import os

ENV = "AUDIENCELAKE_FAIL_AFTER"
_reached: dict[str, int] = {}


class InjectedFault(BaseException):  # noqa: N818 (not an error of the data or the code: a simulated kill)
    """The run stopped at `AUDIENCELAKE_FAIL_AFTER`."""


def reached(point: str) -> None:
    """Count a pass through `point`; raise InjectedFault when it is the one to stop at."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    name, _, nth = spec.partition(":")
    if name != point:
        return
    _reached[point] = _reached.get(point, 0) + 1
    if _reached[point] == int(nth or 1):
        _reached.clear()  # the next run counts afresh
        raise InjectedFault(f"{ENV}={spec}: stopped at pass {nth or 1} through {point}")
