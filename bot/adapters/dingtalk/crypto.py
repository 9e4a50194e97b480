"""DingTalk (钉钉) encrypted HTTP callbacks (事件订阅 HTTP 推送), from the published protocol.

Pure functions and one small class — no network, no I/O, no clock reads: the caller
passes the current time in milliseconds.

* **Request** — ``POST <url>?msg_signature=…&timestamp=…&nonce=…`` (older registrations
  say ``signature`` and ``timeStamp``) with the JSON body ``{"encrypt": "<Base64>"}``.
  The timestamp is in milliseconds.
* **Signature, key, cipher, framing** — the scheme WeCom uses too
  (:mod:`bot.adapters.callback_crypto`): SHA-1 of the sorted ``token``, ``timestamp``,
  ``nonce`` and ``encrypt``; AES-256-CBC keyed with the 43-character ``aes_key``,
  PKCS#7 to 32; the plaintext is ``random16 + len + message + owner key``, the owner key
  being the app key (Client ID) for an app's 事件订阅, the corp id for a callback
  registered through the old 注册回调 API. The message is a JSON object: an event
  (``EventType``: ``check_url`` when the URL is saved, …) or a robot message.
* **Answer** — ``{"msg_signature", "timeStamp", "nonce", "encrypt"}``: the text
  ``success`` encrypted and signed with our own timestamp and nonce; DingTalk treats
  anything else as a failed push (and a failed URL check).

Checks, in order: the timestamp is a number, the signature matches (constant time) —
only then is anything decrypted — the timestamp is less than an hour from now (the window
DingTalk's signed callbacks use), the padding, length and owner key are right, and the
message is a JSON object. Every failure raises
:class:`~bot.adapters.callback_crypto.CallbackCryptoError` with a stable ``code``.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any, Final

from bot.adapters.callback_crypto import (
    CallbackCipher,
    CallbackCryptoError,
    check_signature,
    signature,
)
from bot.adapters.dingtalk.sign import CALLBACK_MAX_SKEW_MS

__all__ = ["BAD_JSON", "BAD_TIMESTAMP", "STALE_TIMESTAMP", "SUCCESS", "DingTalkCallbackCrypto"]

BAD_TIMESTAMP: Final = "bad_timestamp"
STALE_TIMESTAMP: Final = "stale_timestamp"
BAD_JSON: Final = "bad_json"
#: The plaintext of every answer.
SUCCESS: Final = "success"

_TIMESTAMP_RE: Final = re.compile(r"[0-9]{1,16}")
_NONCE_ALPHABET: Final = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


class DingTalkCallbackCrypto:
    """Verify, decrypt and answer DingTalk's encrypted callbacks for one app.

    Args:
        token: the callback token from the developer console.
        aes_key: the 43-character ``aes_key``.
        owner_key: the id every plaintext ends with (the Client ID, or the corp id).
        max_skew_ms: how far the request's timestamp may be from now.

    Raises:
        CallbackCryptoError: ``bad_key`` if the ``aes_key`` is unusable.
    """

    def __init__(self, token: str, aes_key: str, owner_key: str, *,
                 max_skew_ms: int = CALLBACK_MAX_SKEW_MS) -> None:
        self.token = token
        self.owner_key = owner_key
        self.max_skew_ms = max_skew_ms
        self._cipher = CallbackCipher(aes_key, owner_key)

    def __repr__(self) -> str:  # never show the token or key
        return f"DingTalkCallbackCrypto(owner_key={self.owner_key!r})"

    def open(self, *, msg_signature: str, timestamp: str, nonce: str, encrypted: str,
             now_ms: int) -> dict[str, Any]:
        """The callback's message, once the request is proven to come from DingTalk.

        Args:
            msg_signature, timestamp, nonce: the query values, as received.
            encrypted: the body's ``encrypt`` value.
            now_ms: the current Unix time in milliseconds.

        Raises:
            CallbackCryptoError: ``bad_timestamp``, ``bad_signature``,
                ``stale_timestamp``, ``decrypt_failed``, ``bad_padding``,
                ``wrong_receive_id`` or ``bad_json``.
        """
        if not isinstance(timestamp, str) or not _TIMESTAMP_RE.fullmatch(timestamp):
            raise CallbackCryptoError("timestamp is not a decimal number", BAD_TIMESTAMP)
        check_signature(self.token, timestamp, nonce or "", encrypted or "", msg_signature)
        if abs(now_ms - int(timestamp)) >= self.max_skew_ms:
            raise CallbackCryptoError("timestamp is an hour or more from now", STALE_TIMESTAMP)
        text = self._cipher.decrypt(encrypted)
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            raise CallbackCryptoError("the decrypted message is not a JSON object", BAD_JSON)
        return message

    def answer(self, *, now_ms: int, text: str = SUCCESS, nonce: str | None = None,
               random16: bytes | None = None) -> dict[str, str]:
        """The JSON body that tells DingTalk the callback was received.

        Args:
            now_ms: the timestamp to sign with (milliseconds).
            text: the plaintext (DingTalk expects ``success``).
            nonce: the nonce to sign with; a fresh random one by default.
            random16: the ciphertext's random prefix (tests only).
        """
        nonce = nonce or "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(16))
        encrypted = self._cipher.encrypt(text, random16)
        timestamp = str(now_ms)
        return {"msg_signature": signature(self.token, timestamp, nonce, encrypted),
                "timeStamp": timestamp, "nonce": nonce, "encrypt": encrypted}
