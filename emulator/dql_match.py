"""The ``$match`` patterns of the local platform's DQL: :func:`check_pattern` vets a regular
expression and :class:`_Program` runs it as a Thompson automaton with a work budget (linear time,
no backtracking). Also :class:`DQLError`, the HTTP 400 every DQL check raises; :mod:`emulator.dql`
imports both. Rules, sources and assumptions: emulator/README.md, "Queries".
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

try:  # the stdlib regular-expression parser, to vet $match patterns (Python 3.11+ names)
    from re import _constants as _sre_constants
    from re import _parser as _sre_parser
except ImportError:  # pragma: no cover - Python < 3.11
    import sre_constants as _sre_constants  # type: ignore[no-redef]
    import sre_parse as _sre_parser  # type: ignore[no-redef]


#: Longest ``$match`` pattern accepted (assumption: the platform's limit is undocumented).
MAX_PATTERN_LENGTH = 1000
#: Most variable-length quantifiers (``*``, ``+``, ``{m,n}``) in one ``$match`` pattern: refused
#: above it as a backtracking engine could stall on it (assumption, see :func:`check_pattern`).
MAX_VARIABLE_QUANTIFIERS = 3


class DQLError(ValueError):
    """A filter the platform would reject (unknown operator, malformed operand).

    Example
    -------
    >>> try:
    ...     check_pattern("(a|aa)*b", "name")
    ... except DQLError as error:
    ...     print(type(error).__name__)
    DQLError
    """


#: Most instructions of a compiled ``$match`` program (counted repeats expanded): bounds the work
#: per character (assumption: the platform's limit is undocumented).
MAX_PROGRAM_SIZE = 5000
#: Work budget of one ``$match`` test of one value: one unit per character read through the
#: transition cache, :data:`_VISIT_COST` per program state visited when a new automaton state is
#: built (measured: a visit costs ~8 cached reads). Bounds a test to well under a second
#: (assumption; a value that needs more is refused with 400 naming the field).
MAX_MATCH_WORK = 4_000_000
_VISIT_COST = 8
#: Automaton states kept per pattern before the transition cache is dropped.
_MAX_CACHED_TRANSITIONS = 20_000

_IGNORECASE, _MULTILINE, _DOTALL = re.IGNORECASE.value, re.MULTILINE.value, re.DOTALL.value


def _is_word(char: str | None) -> bool:
    return char is not None and (char.isalnum() or char == "_")


_CATEGORIES: dict[Any, Callable[[str], bool]] = {
    _sre_constants.CATEGORY_DIGIT: str.isdecimal,
    _sre_constants.CATEGORY_NOT_DIGIT: lambda c: not c.isdecimal(),
    _sre_constants.CATEGORY_SPACE: str.isspace,
    _sre_constants.CATEGORY_NOT_SPACE: lambda c: not c.isspace(),
    _sre_constants.CATEGORY_WORD: _is_word,
    _sre_constants.CATEGORY_NOT_WORD: lambda c: not _is_word(c),
    _sre_constants.CATEGORY_LINEBREAK: lambda c: c == "\n",
    _sre_constants.CATEGORY_NOT_LINEBREAK: lambda c: c != "\n",
}


def _char_test(op: Any, av: Any, flags: int, refuse: Callable[[str], DQLError]) -> Callable[[str], bool]:
    """The test of one character of a parsed regex item (literal, class, ``.``)."""
    fold = bool(flags & _IGNORECASE)

    def variants(c: str) -> tuple[str, ...]:
        return (c, c.lower(), c.upper()) if fold else (c,)

    if op == _sre_constants.LITERAL:
        wanted = {v for v in variants(chr(av))}
        return lambda c: any(v in wanted for v in variants(c))
    if op == _sre_constants.NOT_LITERAL:
        unwanted = {v for v in variants(chr(av))}
        return lambda c: not any(v in unwanted for v in variants(c))
    if op == _sre_constants.ANY:
        return (lambda c: True) if flags & _DOTALL else (lambda c: c != "\n")
    if op == _sre_constants.IN:
        negate = False
        tests: list[Callable[[str], bool]] = []
        for kind, value in av:
            if kind == _sre_constants.NEGATE:
                negate = True
            elif kind == _sre_constants.LITERAL:
                char = chr(value)
                tests.append(lambda c, o=char: c == o)
            elif kind == _sre_constants.RANGE:
                tests.append(lambda c, lo=value[0], hi=value[1]: lo <= ord(c) <= hi)
            elif kind == _sre_constants.CATEGORY and value in _CATEGORIES:
                tests.append(_CATEGORIES[value])
            else:
                raise refuse(f"the character class item {kind} is not supported")

        def in_class(c: str) -> bool:
            hit = any(t(v) for v in variants(c) for t in tests)
            return hit != negate

        return in_class
    raise refuse(f"{op} is not supported")


class _Program:
    """A Thompson NFA of a regular expression: matched by state sets, never by backtracking.

    Instructions: ``("char", test)``, ``("split", a, b)``, ``("jump", a)``, ``("at", code)``,
    ``("match",)``; a character or an assertion continues at the next instruction.
    """

    def __init__(self, pattern: str, where: str) -> None:
        self.pattern, self.where = pattern, where
        self.code: list[tuple] = []
        self.assertions = False
        tree = _sre_parser.parse(pattern)
        _refuse_backtracking_shapes(tree, self.refuse)
        self._emit(list(tree), tree.state.flags)
        self.code.append(("match",))
        self.cache: dict[tuple, Any] = {}

    def refuse(self, rule: str) -> DQLError:
        shown = self.pattern if len(self.pattern) <= 80 else self.pattern[:77] + "..."
        return DQLError(f"$match at '{self.where}': pattern {shown!r} refused: {rule}")

    def _add(self, instruction: tuple | list) -> int:
        if len(self.code) >= MAX_PROGRAM_SIZE:
            raise self.refuse(f"it expands to more than {MAX_PROGRAM_SIZE} states (counted repeats)")
        self.code.append(instruction)  # type: ignore[arg-type]
        return len(self.code) - 1

    def _emit(self, items: list, flags: int) -> None:
        c = _sre_constants
        for op, av in items:
            if op in (c.LITERAL, c.NOT_LITERAL, c.ANY, c.IN):
                self._add(("char", _char_test(op, av, flags, self.refuse)))
            elif op == c.AT:
                self.assertions = True
                self._add(("at", av, flags))
            elif op == c.SUBPATTERN:
                _group, add, remove, sub = av
                self._emit(sub, (flags | add) & ~remove)
            elif op == c.BRANCH:
                self._emit_branch(av[1], flags)
            elif op in (c.MAX_REPEAT, c.MIN_REPEAT):  # greedy or lazy: the same language
                low, high, sub = av
                for _ in range(low):
                    self._emit(sub, flags)
                if high == c.MAXREPEAT:
                    split = self._add(["split", None, None])
                    self._emit(sub, flags)
                    self._add(("jump", split))
                    self.code[split] = ("split", split + 1, len(self.code))
                else:
                    splits = []
                    for _ in range(high - low):
                        splits.append(self._add(["split", None, None]))
                        self._emit(sub, flags)
                    for split in splits:
                        self.code[split] = ("split", split + 1, len(self.code))
            elif op in (c.GROUPREF, c.GROUPREF_EXISTS):
                raise self.refuse("backreferences are not supported (matching them is NP-hard)")
            elif op in (c.ASSERT, c.ASSERT_NOT):
                raise self.refuse("lookahead / lookbehind assertions are not supported")
            else:  # atomic groups, possessive quantifiers
                raise self.refuse(f"{op} is not supported")

    def _emit_branch(self, branches: list, flags: int) -> None:
        jumps = []
        for branch in branches[:-1]:
            split = self._add(["split", None, None])
            self._emit(branch, flags)
            jumps.append(self._add(["jump", None]))
            self.code[split] = ("split", split + 1, len(self.code))
        self._emit(branches[-1], flags)
        for jump in jumps:
            self.code[jump] = ("jump", len(self.code))

    def _holds(self, code: Any, flags: int, prev: str | None, nxt: str | None, last: bool) -> bool:
        c = _sre_constants
        multiline = flags & _MULTILINE
        if code == c.AT_BEGINNING_STRING or (code == c.AT_BEGINNING and not multiline):
            return prev is None
        if code in (c.AT_BEGINNING, c.AT_BEGINNING_LINE):
            return prev is None or prev == "\n"
        if code == c.AT_END_STRING:
            return nxt is None
        if code == c.AT_END and not multiline:
            return nxt is None or (nxt == "\n" and last)
        if code in (c.AT_END, c.AT_END_LINE):
            return nxt is None or nxt == "\n"
        if code in (c.AT_BOUNDARY, c.AT_NON_BOUNDARY):
            boundary = _is_word(prev) != _is_word(nxt)
            return boundary if code == c.AT_BOUNDARY else not boundary
        raise self.refuse(f"the assertion {code} is not supported")

    def _step(self, states: frozenset, prev: str | None, nxt: str | None, last: bool) -> tuple[Any, int]:
        """Follow the empty moves from ``states`` (plus the start: a search) and read ``nxt``.

        Answers ``(True, work)`` when the match instruction is reached, else ``(next states,
        work)``; ``work`` is the number of instructions visited.
        """
        code = self.code
        seen: set[int] = set()
        stack = [0, *states]
        found: list[int] = []
        while stack:
            pc = stack.pop()
            if pc in seen:
                continue
            seen.add(pc)
            instruction = code[pc]
            kind = instruction[0]
            if kind == "char":
                if nxt is not None and instruction[1](nxt):
                    found.append(pc + 1)
            elif kind == "split":
                stack.append(instruction[2])
                stack.append(instruction[1])
            elif kind == "jump":
                stack.append(instruction[1])
            elif kind == "at":
                if self._holds(instruction[1], instruction[2], prev, nxt, last):
                    stack.append(pc + 1)
            else:
                return True, len(seen)
        return frozenset(found), len(seen)

    def search(self, value: str) -> bool:
        """Whether the pattern occurs in ``value``, in O(len(value) x program size) at worst."""
        cache = self.cache
        assertions = self.assertions
        states: frozenset = frozenset()
        work = 0
        prev: str | None = None
        size = len(value)
        read_cost = 2 if assertions else 1  # the context key makes a cached read twice as dear
        for position, char in enumerate(value):
            last = assertions and position == size - 1
            key = (states, char, (prev is None, prev == "\n", _is_word(prev)) if assertions else None, last)
            work += read_cost
            result = cache.get(key)
            if result is None:
                result, visited = self._step(states, prev, char, last)
                work += visited * _VISIT_COST
                if len(cache) >= _MAX_CACHED_TRANSITIONS:
                    cache.clear()
                cache[key] = result
            if work > MAX_MATCH_WORK:
                raise DQLError(
                    f"$match at '{self.where}': matching a value of {size} characters needs more than "
                    f"{MAX_MATCH_WORK} steps; use a shorter pattern or value"
                )
            if result is True:
                return True
            states = result
            prev = char
        return self._step(states, prev, None, False)[0] is True


_REPEATS = frozenset(
    op
    for op in (
        getattr(_sre_constants, "MAX_REPEAT", None),
        getattr(_sre_constants, "MIN_REPEAT", None),
        getattr(_sre_constants, "POSSESSIVE_REPEAT", None),
    )
    if op is not None
)


def _refuse_backtracking_shapes(tree: Any, refuse: Callable[[str], DQLError]) -> None:
    """Refuse the shapes that backtrack catastrophically on a backtracking engine (PCRE, ``re``).

    The emulator's own matcher is linear whatever the shape; these are refused so that a query
    that could stall a backtracking platform fails here at once, with 400 (assumption: the
    platform's limits are undocumented). See emulator/README.md, "``$match`` limits".
    """
    variable = 0

    def walk(items: Any, in_repeat: bool) -> None:
        nonlocal variable
        for op, av in items:
            if op in _REPEATS:
                low, high, sub = av
                if low != high:
                    if in_repeat:
                        raise refuse(
                            "a quantifier inside a quantified group can backtrack catastrophically; "
                            "use one level of repetition, e.g. 'a+$'"
                        )
                    variable += 1
                walk(sub, in_repeat or high > 1)
            elif op == _sre_constants.BRANCH:
                if in_repeat:
                    raise refuse(
                        "an alternation inside a quantifier can backtrack catastrophically; use a character class"
                    )
                for branch in av[1]:
                    walk(branch, in_repeat)
            elif op == _sre_constants.SUBPATTERN:
                walk(av[-1], in_repeat)
            elif op in (_sre_constants.GROUPREF, _sre_constants.GROUPREF_EXISTS):
                raise refuse("backreferences are not supported (matching them is NP-hard)")

    walk(tree, False)
    if variable > MAX_VARIABLE_QUANTIFIERS:
        raise refuse(f"more than {MAX_VARIABLE_QUANTIFIERS} variable-length quantifiers")


def check_pattern(pattern: str, where: str = "$match") -> None:
    """Refuse a ``$match`` regular expression (HTTP 400), naming the field, pattern and rule.

    Accepted patterns are matched by :class:`_Program`, a Thompson automaton with a work budget
    (no backtracking: at most :data:`MAX_MATCH_WORK` steps per value, whatever the pattern).
    Refused: over :data:`MAX_PATTERN_LENGTH` characters or :data:`MAX_PROGRAM_SIZE` states, the
    catastrophic shapes of :func:`_refuse_backtracking_shapes`, lookarounds, atomic groups and
    possessive quantifiers.

    Example
    -------
    >>> check_pattern(r"^img-\\d+\\.jpg$")
    >>> check_pattern("a*a*a*b")  # matched in linear time, not refused
    >>> try:
    ...     check_pattern("(a+)+$", "name")
    ... except DQLError as error:
    ...     print(error)
    $match at 'name': pattern '(a+)+$' refused: a quantifier inside a quantified group can backtrack catastrophically; use one level of repetition, e.g. 'a+$'
    """
    _compile_pattern(pattern, where)


@functools.lru_cache(maxsize=256)
def _compile_pattern(pattern: str, where: str) -> _Program:
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise DQLError(
            f"$match at '{where}': pattern of {len(pattern)} characters refused (at most {MAX_PATTERN_LENGTH})"
        )
    return _Program(pattern, where)
