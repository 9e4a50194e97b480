"""“您是否要输入 /incident？”: the command name closest to a mistyped one.

Close means one edit away (insert, delete, replace, or swap two neighbours) for words of
up to five characters, two for longer ones, or the start of exactly one name (``/inc``).
Nothing is suggested when nothing is that close: a wrong guess is worse than none.
"""

from __future__ import annotations

from collections.abc import Iterable

MIN_PREFIX = 3


def distance(a: str, b: str) -> int:
    """Edits from ``a`` to ``b``, a swap of neighbours counting as one (optimal string alignment)."""
    rows = [list(range(len(b) + 1))]
    for i, ca in enumerate(a, start=1):
        row = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            row[j] = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                row[j] = min(row[j], rows[-2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]


def closest(word: str, names: Iterable[str]) -> str | None:
    """The name ``word`` was probably meant to be, or None; ties go to the earlier name."""
    word = word.strip().lower()
    if not word:
        return None
    names = [n for n in dict.fromkeys(names) if n != word]
    limit = 1 if len(word) <= 5 else 2
    best: tuple[int, str] | None = None
    for name in names:
        d = distance(word, name.lower())
        if d <= limit and (best is None or d < best[0]):
            best = (d, name)
    if best is not None:
        return best[1]
    starting = [n for n in names if len(word) >= MIN_PREFIX and n.lower().startswith(word)]
    return starting[0] if len(starting) == 1 else None


def unknown_hint(word: str | None, text: str, names: Iterable[str]) -> str:
    """``未知命令 /incdent。您是否要输入 /incident？`` for a slash command, ``没有看懂这条消息。``
    (with a Chinese keyword suggested, ``您是否要输入“值班”？``) for plain text."""
    names = list(names)
    typed = word if word else (text.split(maxsplit=1)[0] if text.strip() else "")
    guess = closest(typed, names if word else [n for n in names if not n.isascii()])
    hint = f"未知命令 /{word}。" if word else "没有看懂这条消息。"
    if guess:
        hint += f"您是否要输入 /{guess}？" if guess.isascii() else f"您是否要输入“{guess}”？"
    return hint
