"""Go ``regexp`` (RE2 syntax) on top of Python's ``re``, for the ``matches`` operator.

Owns the translation of a Go regular expression into an equivalent Python pattern and the
Go-style ``error parsing regexp: <code>: `<expr>`` messages for the syntax errors Go reports
most often.  Semantics reproduced: ``$`` is end-of-text unless ``(?m)``; ``\\z``, ``\\Q..\\E``,
``\\x{...}``, octal escapes, POSIX ``[[:alpha:]]`` classes, ASCII-only ``\\d \\s \\w``, scoped
``(?flags)`` groups, ``(?<name>...)``; Perl-only features Go rejects (look-around,
back-references) are rejected with Go's message.  Not reproduced (documented limits): Unicode
classes other than ``\\pL``/``\\pN``/``\\pZ`` and the ``U`` (ungreedy) flag, which raise
GoRegexpError, and Go's exact text for rarer syntax errors (Python's text is used instead).
"""

from __future__ import annotations

import re

_POSIX = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_PERL_CLASSES = {"d": "0-9", "s": "\\t\\n\\f\\r ", "w": "0-9A-Za-z_"}
_UNICODE_CLASSES = {"L": "[^\\W\\d_]", "N": "\\d", "Z": "\\s"}
_SIMPLE = {"a": "\\a", "f": "\\f", "t": "\\t", "n": "\\n", "r": "\\r", "v": "\\v"}


class GoRegexpError(ValueError):
    """The pattern does not compile; ``str()`` mimics Go's ``*syntax.Error``."""


def _err(code: str, expr: str) -> GoRegexpError:
    return GoRegexpError(f"error parsing regexp: {code}: `{expr}`")


def _class_char(ch: str) -> str:
    return ch if ch.isalnum() else "\\" + ch if ch.isascii() else ch


class _Translator:
    """One left-to-right pass over a Go pattern producing a Python pattern."""

    def __init__(self, pattern: str) -> None:
        self.src = pattern
        self.i = 0
        self.out: list[str] = []
        # per open group: (number of extra scoped flag groups to close, multiline flag on entry)
        self.groups: list[tuple[int, bool]] = []
        self.extra = 0
        self.multiline = False
        self.can_repeat = False
        self.last_repeat = ""

    def run(self) -> str:
        src = self.src
        while self.i < len(src):
            ch = src[self.i]
            if ch not in "*+?{":
                self.last_repeat = ""
            if ch == "\\":
                self._escape()
            elif ch == "[":
                self._char_class()
            elif ch == "(":
                self._open()
            elif ch == ")":
                self._close()
            elif ch in "*+?":
                self._repeat(ch)
            elif ch == "{" and re.match(r"\{[0-9]+(,[0-9]*)?\}", src[self.i :]):
                self._counted()
            elif ch == "$":
                self.out.append("$" if self.multiline else "\\Z")
                self.i += 1
                self.can_repeat = False
            elif ch in "|^":
                self.out.append(ch)
                self.i += 1
                self.can_repeat = ch == "^"
            else:
                self.out.append(re.escape(ch) if ch in "{}#&~- \t\n\r\f\v" else ch)
                self.i += 1
                self.can_repeat = True
        if self.groups:
            raise _err("missing closing )", src)
        self.out.append(")" * self.extra)
        return "".join(self.out)

    def _repeat(self, op: str) -> None:
        """A repetition operator (``*``, ``+``, ``?`` or a checked ``{n,m}``), lazy when ``?`` follows."""
        if not self.can_repeat:
            if self.last_repeat:
                raise _err("invalid nested repetition operator", self.last_repeat + op)
            raise _err("missing argument to repetition operator", op)
        self.i += len(op)
        if self.src[self.i : self.i + 1] == "?":
            op += "?"
            self.i += 1
        self.out.append(op)
        self.can_repeat = False
        self.last_repeat = op

    def _counted(self) -> None:
        m = re.match(r"\{([0-9]+)(,([0-9]*))?\}", self.src[self.i :])
        assert m is not None
        lo = int(m.group(1))
        hi = int(m.group(3)) if m.group(3) else None
        if lo > 1000 or (hi is not None and (hi > 1000 or hi < lo)):
            raise _err("invalid repeat count", m.group(0))
        self._repeat(m.group(0))

    def _open(self) -> None:
        src = self.src
        rest = src[self.i :]
        if not rest.startswith("(?"):
            self.groups.append((self.extra, self.multiline))
            self.extra = 0
            self.out.append("(")
            self.i += 1
            self.can_repeat = False
            return
        m = re.match(r"\(\?P?<([A-Za-z0-9_]+)>", rest)
        if m:
            self.groups.append((self.extra, self.multiline))
            self.extra = 0
            self.out.append(f"(?P<{m.group(1)}>")
            self.i += len(m.group(0))
            self.can_repeat = False
            return
        m = re.match(r"\(\?([imsU]*)(?:-([imsU]*))?([:)])", rest)
        if not m or (m.group(2) is not None and not m.group(2)):
            bad = re.match(r"\(\?[imsU-]*.?", rest)
            raise _err("invalid or unsupported Perl syntax", bad.group(0) if bad else "(?")
        on, off, end = m.group(1), m.group(2) or "", m.group(3)
        if "U" in on + off:
            raise GoRegexpError("error parsing regexp: the U (ungreedy) flag is not supported here")
        multiline = (self.multiline or "m" in on) and "m" not in off
        flags = on + ("-" + off if off else "")
        self.i += len(m.group(0))
        if end == ":":
            self.groups.append((self.extra, self.multiline))
            self.extra = 0
            self.multiline = multiline
            self.out.append(f"(?{flags}:" if flags else "(?:")
        elif flags:
            # Go applies a bare flag group to the rest of the enclosing group.
            self.out.append(f"(?{flags}:")
            self.extra += 1
            self.multiline = multiline
        self.can_repeat = False

    def _close(self) -> None:
        if not self.groups:
            raise _err("unexpected )", self.src)
        self.out.append(")" * self.extra + ")")
        self.extra, self.multiline = self.groups.pop()
        self.i += 1
        self.can_repeat = True

    def _escape(self) -> None:
        src = self.src
        if self.i + 1 >= len(src):
            raise _err("trailing backslash at end of expression", "")
        c = src[self.i + 1]
        self.can_repeat = True
        if c == "Q":
            end = src.find("\\E", self.i + 2)
            literal = src[self.i + 2 :] if end < 0 else src[self.i + 2 : end]
            self.out.append("(?:" + re.escape(literal) + ")" if literal else "")
            self.i = len(src) if end < 0 else end + 2
            self.can_repeat = bool(literal)
            return
        self.i += 2
        if c in "dsw":
            self.out.append(f"[{_PERL_CLASSES[c]}]")
        elif c in "DSW":
            self.out.append(f"[^{_PERL_CLASSES[c.lower()]}]")
        elif c in "bB":
            self.out.append("\\" + c)
            self.can_repeat = False
        elif c == "A":
            self.out.append("\\A")
            self.can_repeat = False
        elif c == "z":
            self.out.append("\\Z")
            self.can_repeat = False
        elif c in "pP":
            self.out.append(self._unicode_class(c))
        else:
            self.out.append(self._char_escape(c))

    def _unicode_class(self, c: str) -> str:
        src = self.src
        if src[self.i : self.i + 1] == "{":
            end = src.find("}", self.i)
            if end < 0:
                raise _err("invalid character class range", src[self.i - 2 :])
            name = src[self.i + 1 : end]
            self.i = end + 1
        else:
            name = src[self.i : self.i + 1]
            self.i += 1
        negate = c == "P"
        if name.startswith("^"):
            negate, name = not negate, name[1:]
        if name not in _UNICODE_CLASSES:
            raise GoRegexpError(f"error parsing regexp: unsupported Unicode class here: `\\{c}{name}`")
        pattern = _UNICODE_CLASSES[name]
        return f"(?:(?!{pattern})[\\s\\S])" if negate else pattern

    def _char_escape(self, c: str) -> str:
        """Translate the escape whose letter ``c`` was just consumed; returns a Python atom."""
        src = self.src
        if c in _SIMPLE:
            return _SIMPLE[c]
        if c == "x":
            if src[self.i : self.i + 1] == "{":
                end = src.find("}", self.i)
                digits = src[self.i + 1 : end] if end >= 0 else ""
                if end < 0 or not re.fullmatch(r"[0-9A-Fa-f]+", digits) or int(digits, 16) > 0x10FFFF:
                    raise _err(
                        "invalid escape sequence", src[self.i - 2 : (end + 1 if end >= 0 else len(src))]
                    )
                self.i = end + 1
                return re.escape(chr(int(digits, 16)))
            digits = src[self.i : self.i + 2]
            if not re.fullmatch(r"[0-9A-Fa-f]{2}", digits):
                raise _err("invalid escape sequence", src[self.i - 2 : self.i + len(digits)])
            self.i += 2
            return re.escape(chr(int(digits, 16)))
        if c in "01234567":
            if c != "0" and src[self.i : self.i + 1] not in tuple("01234567"):
                raise _err("invalid escape sequence", "\\" + c)
            m = re.match(r"[0-7]{0,2}", src[self.i :])
            assert m is not None
            self.i += len(m.group(0))
            return re.escape(chr(int(c + m.group(0), 8)))
        if c.isascii() and not c.isalnum() and c != "_":
            return re.escape(c)
        raise _err("invalid escape sequence", "\\" + c)

    def _char_class(self) -> None:
        src = self.src
        start = self.i
        self.i += 1
        items: list[str] = []
        negated = False
        if src[self.i : self.i + 1] == "^":
            negated = True
            self.i += 1
        first = True
        while True:
            if self.i >= len(src):
                raise _err("missing closing ]", src[start:])
            ch = src[self.i]
            if ch == "]" and not first:
                self.i += 1
                break
            first = False
            if src.startswith("[:", self.i):
                end = src.find(":]", self.i + 2)
                name = src[self.i + 2 : end] if end >= 0 else ""
                neg = name.startswith("^")
                if end >= 0 and name.lstrip("^") in _POSIX:
                    body = _POSIX[name.lstrip("^")]
                    items.append(f"[^{body}]" if neg else body)
                    self.i = end + 2
                    continue
            lo = self._class_atom()
            if lo.startswith(("[", "(")) or (len(lo) > 1 and not lo.startswith("\\")):
                items.append(lo)
                continue
            if src[self.i : self.i + 1] == "-" and src[self.i + 1 : self.i + 2] not in ("]", ""):
                range_start = self.i
                self.i += 1
                hi = self._class_atom()
                if self._atom_char(hi) is None or self._atom_char(lo) is None:
                    raise _err("invalid character class range", src[range_start - 1 : self.i])
                if self._atom_char(lo) > self._atom_char(hi):  # type: ignore[operator]
                    raise _err("invalid character class range", src[start + 1 : self.i])
                items.append(f"{lo}-{hi}")
            else:
                items.append(lo)
        simple = [it for it in items if not it.startswith("[^") and not it.startswith("(")]
        complex_ = [it for it in items if it.startswith(("[^", "("))]
        body = "".join(simple)
        if not complex_:
            self.out.append(f"[{'^' if negated else ''}{body}]")
        else:
            alts = ([f"[{body}]"] if body else []) + complex_
            union = "(?:" + "|".join(alts) + ")"
            self.out.append(f"(?:(?!{union})[\\s\\S])" if negated else union)
        self.can_repeat = True

    @staticmethod
    def _atom_char(atom: str) -> str | None:
        if len(atom) == 1:
            return atom
        if atom.startswith("\\") and len(atom) == 2 and not atom[1].isalnum():
            return atom[1]
        if atom.startswith(("\\x", "\\u", "\\U")):
            return chr(int(atom[2:], 16))
        simple = {"\\a": "\a", "\\f": "\f", "\\t": "\t", "\\n": "\n", "\\r": "\r", "\\v": "\v"}
        return simple.get(atom)

    def _class_atom(self) -> str:
        """One class member: a (possibly escaped) character or a Perl/Unicode class."""
        src = self.src
        ch = src[self.i]
        if ch != "\\":
            self.i += 1
            return _class_char(ch)
        if self.i + 1 >= len(src):
            raise _err("missing closing ]", src)
        c = src[self.i + 1]
        self.i += 2
        if c in "dsw":
            return _PERL_CLASSES[c]
        if c in "DSW":
            return f"[^{_PERL_CLASSES[c.lower()]}]"
        if c in "pP":
            pattern = self._unicode_class(c)
            return f"({pattern})"
        if c in _SIMPLE:
            return _SIMPLE[c]
        atom = self._char_escape(c)
        char = atom[-1] if len(atom) == 2 and atom[0] == "\\" else atom
        if len(char) == 1:
            return (
                f"\\x{ord(char):02x}"
                if ord(char) < 0x100
                else f"\\u{ord(char):04x}"
                if ord(char) < 0x10000
                else f"\\U{ord(char):08x}"
            )
        return atom


def compile_go_regexp(pattern: str) -> re.Pattern[str]:
    """Compile a Go (RE2) regular expression; raises GoRegexpError with a Go-like message."""
    translated = _Translator(pattern).run()
    try:
        return re.compile(translated)
    except re.error as exc:
        raise GoRegexpError(f"error parsing regexp: {exc.msg}: `{pattern}`") from None
