"""Fault injection: stop a run right after a chosen Delta commit, as a kill would leave the lake.

`AUDIENCELAKE_FAIL_AFTER=<layer>.<table>[:n]` stops the process right after its n-th commit (default 1) to that
table by raising `InjectedFault`, a `BaseException` no handler of the project catches. A kill can only leave a
Delta table at a commit (files of an unfinished write are never read), so stopping after each commit in turn
reaches every state a kill can leave. Unset (always, outside tests), `after_commit` does nothing.
"""

from __future__ import annotations

import os

ENV = "AUDIENCELAKE_FAIL_AFTER"
_commits: dict[str, int] = {}


class InjectedFault(BaseException):  # noqa: N818 (not an error of the data or the code: a simulated kill)
    """The run stopped at `AUDIENCELAKE_FAIL_AFTER`."""


def after_commit(table: str) -> None:
    """Count a commit to `table` (`layer.name`); raise InjectedFault when it is the one to stop after."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    name, _, nth = spec.partition(":")
    if name != table:
        return
    _commits[table] = _commits.get(table, 0) + 1
    if _commits[table] == int(nth or 1):
        _commits.clear()  # the next run counts afresh
        raise InjectedFault(f"{ENV}={spec}: stopped after commit {nth or 1} to {table}")
