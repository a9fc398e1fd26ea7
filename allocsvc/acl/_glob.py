"""Glob matching and "closest glob wins" selection, as Nomad's ``acl/acl.go`` does it.

Owns: ``go_glob`` (``ryanuber/go-glob`` v1 semantics: ``*`` matches any run of characters, nothing
else is special), ``glob_difference`` and ``closest_glob``, which reproduces
``findClosestMatchingGlob`` including its tie-break. Nomad sorts the matching globs with
``sort.SliceStable`` and the non-strict comparator ``difference[i] <= difference[j]``; Go's stable sort
is an insertion sort over blocks of 20 followed by SymMerge, and with ``<=`` it reorders equal
elements. ``_go_slice_stable`` is a line-by-line port of Go's ``sort.stable_func`` so ties resolve the
same way (for at most 20 matches: the *last* candidate in radix-walk order, i.e. the
lexicographically greatest pattern, among those with the smallest difference).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import TypeVar

T = TypeVar("T")


@lru_cache(maxsize=4096)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def go_glob(pattern: str, subject: str) -> bool:
    """Report whether ``subject`` matches ``pattern`` (only ``*`` is a wildcard)."""
    if "*" not in pattern:
        return subject == pattern
    return _glob_regex(pattern).fullmatch(subject) is not None


def glob_difference(pattern: str, name: str) -> int:
    """Nomad's ``nsLen - len(k) + strings.Count(k, "*")`` (byte lengths)."""
    return len(name.encode()) - len(pattern.encode()) + pattern.count("*")


def closest_glob(patterns: Sequence[tuple[str, T]], name: str) -> T | None:
    """Pick the value of the closest matching glob; ``patterns`` must be in byte order."""
    matches = [(glob_difference(p, name), value) for p, value in patterns if go_glob(p, name)]
    if not matches:
        return None
    if len(matches) == 1:
        return matches[0][1]
    _go_slice_stable(matches, lambda data, i, j: data[i][0] <= data[j][0])
    return matches[0][1]


# --- a port of Go's sort.SliceStable (src/sort/zsortfunc.go) ---------------------------------

Less = Callable[[list[T], int, int], bool]


def _go_slice_stable(data: list[T], less: Less[T]) -> None:
    n = len(data)
    block = 20
    a, b = 0, block
    while b <= n:
        _insertion_sort(data, less, a, b)
        a = b
        b += block
    _insertion_sort(data, less, a, n)
    while block < n:
        a, b = 0, 2 * block
        while b <= n:
            _sym_merge(data, less, a, a + block, b)
            a = b
            b += 2 * block
        m = a + block
        if m < n:
            _sym_merge(data, less, a, m, n)
        block *= 2


def _swap(data: list[T], i: int, j: int) -> None:
    data[i], data[j] = data[j], data[i]


def _insertion_sort(data: list[T], less: Less[T], a: int, b: int) -> None:
    for i in range(a + 1, b):
        j = i
        while j > a and less(data, j, j - 1):
            _swap(data, j, j - 1)
            j -= 1


def _sym_merge(data: list[T], less: Less[T], a: int, m: int, b: int) -> None:
    if m - a == 1:
        i, j = m, b
        while i < j:
            h = (i + j) >> 1
            if less(data, h, a):
                i = h + 1
            else:
                j = h
        for k in range(a, i - 1):
            _swap(data, k, k + 1)
        return
    if b - m == 1:
        i, j = a, m
        while i < j:
            h = (i + j) >> 1
            if not less(data, m, h):
                i = h + 1
            else:
                j = h
        for k in range(m, i, -1):
            _swap(data, k, k - 1)
        return
    mid = (a + b) >> 1
    n = mid + m
    if m > mid:
        start, r = n - b, mid
    else:
        start, r = a, m
    p = n - 1
    while start < r:
        c = (start + r) >> 1
        if not less(data, p - c, c):
            start = c + 1
        else:
            r = c
    end = n - start
    if start < m < end:
        _rotate(data, start, m, end)
    if a < start < mid:
        _sym_merge(data, less, a, start, mid)
    if mid < end < b:
        _sym_merge(data, less, mid, end, b)


def _swap_range(data: list[T], a: int, b: int, n: int) -> None:
    for i in range(n):
        _swap(data, a + i, b + i)


def _rotate(data: list[T], a: int, m: int, b: int) -> None:
    i = m - a
    j = b - m
    while i != j:
        if i > j:
            _swap_range(data, m - i, m, j)
            i -= j
        else:
            _swap_range(data, m - i, m + j - i, i)
            j -= i
    _swap_range(data, m - i, m, i)
