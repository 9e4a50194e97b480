"""Phone numbers: what a person's phone may be, and its stored form.

A person's phone is either a mainland mobile number (11 digits, ``1[3-9]`` then nine
digits; spaces, dashes and a leading ``+86`` are dropped: ``13812345678``) or a landline
with its area code (``0`` + two or three digits, then a 7–8 digit number, optionally an
extension written ``转123`` or ``-123``: stored as ``023-67881234`` or
``023-67881234转123``). Anything else is refused with :data:`HINT`, which names the
examples. Area codes of two digits after the ``0`` are 010 and 020–029; every other code
has three, which is how an undashed ``02367881234`` is split.
"""

from __future__ import annotations

import re
import unicodedata

from core.errors import InputError

HINT = ("请填写 11 位手机号码（如 13812345678）或带区号的固定电话"
        "（如 023-67881234，分机写作 023-67881234转123）")

_MOBILE = re.compile(r"^(?:\+?86)?(1[3-9]\d{9})$")
_LANDLINE = re.compile(
    r"^(?:\((0\d{2,3})\)|(0\d{2,3})-?)"      # (023) or 023 or 023-
    r"([2-9]\d{6,7})"                         # the local number
    r"(?:(?:转|-|ext\.?|x)(\d{1,6}))?$",      # an extension
    re.IGNORECASE)
_DROP = re.compile(r"[\s\u3000]+")
_MOBILE_DROP = re.compile(r"[\s\u3000\-]+")


def _two_digit_area(code: str) -> bool:
    """010 and 020–029 are the two-digit area codes."""
    return code[1] in "12"


def normalize_phone(text: str) -> str:
    """The stored form of a phone number.

    Raises:
        InputError: neither a mobile nor an area-code landline number.
    """
    raw = text.strip()
    wide = unicodedata.normalize("NFKC", raw)     # full-width digits, brackets and dashes
    mobile = _MOBILE.match(_MOBILE_DROP.sub("", wide))
    if mobile:
        return mobile.group(1)
    compact = _DROP.sub("", wide)
    found = _LANDLINE.match(compact)
    if found:
        area = found.group(1) or found.group(2)
        number, ext = found.group(3), found.group(4)
        dashed = found.group(1) is not None or compact[len(area)] == "-"
        if not dashed and len(area) == 4 and _two_digit_area(area):
            # 02367881234: the area code is 023 and the number 67881234.
            number, area = area[3] + number, area[:3]
            if not re.fullmatch(r"[2-9]\d{6,7}", number):
                raise InputError(f"电话“{raw}”无效：{HINT}")
        if (len(area) == 3) != _two_digit_area(area):
            raise InputError(f"电话“{raw}”无效：区号 {area} 不存在。{HINT}")
        return f"{area}-{number}" + (f"转{ext}" if ext else "")
    raise InputError(f"电话“{raw}”无效：{HINT}")


def is_mobile(phone: str) -> bool:
    """Whether a stored number is a mobile (one person's own: duplicates are refused)."""
    return _MOBILE.match(_MOBILE_DROP.sub("", phone.strip())) is not None


def phone_key(phone: str) -> str:
    """The digits that identify a number whatever its spelling (``138 1234 5678``,
    ``+86 138-1234-5678``, ``13812345678`` are one number); '' for none."""
    wide = unicodedata.normalize("NFKC", phone.strip())
    mobile = _MOBILE.match(_MOBILE_DROP.sub("", wide))
    if mobile:
        return mobile.group(1)
    return re.sub(r"[^\d转]", "", wide)
