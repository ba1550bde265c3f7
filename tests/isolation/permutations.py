"""The possible permutations of two isolation-spec sessions, for a spec's permutation list.

isolationtester runs every interleaving of the sessions' steps when a spec lists none. An
interleaving is impossible when it asks a session to run a step while that session waits
for a lock the other session holds: the tester then waits for the step until
PGISOLATIONTIMEOUT and cancels it. Such specs list their possible permutations, and this
prints them under a simple model of the waits: each step named in --lock takes the one
lock (held until its session's last step, the COMMIT); a step that needs it while the
other session holds it waits, and its session runs nothing more until the other COMMITs.

    python3 tests/isolation/permutations.py e_upd,e_c h_load,h_call,h_c --lock e_upd,h_call

prints "# 7 of 10" and the 7 `permutation` lines of rename-call.spec.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Iterator, Sequence


def interleavings(a: Sequence[str], b: Sequence[str]) -> Iterator[list[tuple[int, str]]]:
    """Every order of the steps of a and b that keeps each session's own order."""
    n = len(a) + len(b)
    for positions in itertools.combinations(range(n), len(a)):
        order, ia, ib = [], 0, 0
        for i in range(n):
            if i in positions:
                order.append((0, a[ia]))
                ia += 1
            else:
                order.append((1, b[ib]))
                ib += 1
        yield order


def possible(order: list[tuple[int, str]], locking: set[str], last: set[str]) -> bool:
    holder: int | None = None  # the session holding the lock
    waiting: dict[int, str] = {}  # session -> its step waiting for the lock
    for session, step in order:
        if session in waiting:
            return False  # the session waits: it cannot run this step
        if step in locking and holder not in (None, session):
            waiting[session] = step
            continue
        if step in locking:
            holder = session
        if step in last and holder == session:
            holder = None
            for other, blocked in list(waiting.items()):
                del waiting[other]
                holder = None if blocked in last else other
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", help="the first session's steps, comma-separated, COMMIT last")
    parser.add_argument("b", help="the second session's steps, comma-separated, COMMIT last")
    parser.add_argument("--lock", default="", help="the steps that take the lock, comma-separated")
    args = parser.parse_args()
    a, b = args.a.split(","), args.b.split(",")
    locking = {s for s in args.lock.split(",") if s}
    orders = list(interleavings(a, b))
    ok = [o for o in orders if possible(o, locking, {a[-1], b[-1]})]
    print(f"# {len(ok)} of {len(orders)}")
    for order in ok:
        print("permutation " + " ".join(step for _, step in order))


if __name__ == "__main__":
    main()
