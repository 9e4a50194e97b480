"""The callback encryption WeCom (企业微信) and DingTalk (钉钉) share, written from their
published protocols (企业微信「回调和回复的加解密方案」; 钉钉「事件订阅 HTTP 推送」 加解密).

Pure functions and one small class — no network, no I/O, no clock reads. The platform
modules (:mod:`bot.adapters.wecom.crypto`, :mod:`bot.adapters.dingtalk.crypto`) add what
differs: the envelope (XML or JSON), the timestamp unit and freshness rule, the reply.

* **Signature** — the SHA-1 hex digest of the four strings ``token``, ``timestamp``,
  ``nonce`` and the encrypted text, sorted lexicographically and concatenated.
* **Key** — the 43-character key (WeCom's EncodingAESKey, DingTalk's ``aes_key``) plus
  ``"="`` is Base64 for the 32-byte AES key. The IV is the first 16 bytes of the key.
* **Cipher** — AES-256-CBC with PKCS#7 padding to a multiple of **32** bytes (so 1..32
  bytes of padding are always added).
* **Plaintext** — 16 random bytes, the 4-byte big-endian length of the message, the
  UTF-8 message, then the receive id (WeCom: the corp id; DingTalk: the app key or the
  corp id the callback was registered with).

Callers verify the signature *before* decrypting, so padding or framing errors are never
reachable by someone who does not know the token. Every failure raises
:class:`CallbackCryptoError` with a stable ``code``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
from typing import Final

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = [
    "BAD_KEY",
    "BAD_PADDING",
    "BAD_SIGNATURE",
    "DECRYPT_FAILED",
    "PAD_BLOCK",
    "WRONG_RECEIVE_ID",
    "CallbackCipher",
    "CallbackCryptoError",
    "check_signature",
    "decode_aes_key",
    "pkcs7_pad",
    "pkcs7_unpad",
    "signature",
]

BAD_SIGNATURE: Final = "bad_signature"
BAD_PADDING: Final = "bad_padding"
DECRYPT_FAILED: Final = "decrypt_failed"
WRONG_RECEIVE_ID: Final = "wrong_receive_id"
BAD_KEY: Final = "bad_key"

PAD_BLOCK: Final = 32
"""Both platforms pad to multiples of 32 bytes, not the AES block size of 16."""

RANDOM_LEN: Final = 16
_LEN_FIELD: Final = 4
_AES_BLOCK: Final = 16


class CallbackCryptoError(Exception):
    """A callback failed verification, decryption or parsing.

    Attributes:
        message: human-readable explanation (safe to log; never contains key material).
        code: a stable code: ``bad_signature``, ``bad_padding``, ``decrypt_failed``,
            ``wrong_receive_id``, ``bad_key``, or a platform's own (``stale_timestamp``,
            ``bad_timestamp``, ``bad_xml``, ``bad_json`` …).
    """

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, {self.code!r})"


def signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    """The lowercase SHA-1 hex digest of the four strings sorted and concatenated.

    Args:
        token: the callback token configured in the platform's console.
        timestamp: the request's timestamp, exactly as received.
        nonce: the request's nonce, exactly as received.
        encrypted: the Base64 ciphertext.
    """
    parts = sorted([token, str(timestamp), str(nonce), encrypted])
    return hashlib.sha1("".join(parts).encode("utf-8")).hexdigest()


def check_signature(token: str, timestamp: str, nonce: str, encrypted: str,
                    given: str) -> None:
    """Compare ``given`` with the expected signature in constant time.

    Raises:
        CallbackCryptoError: ``bad_signature`` when they differ.
    """
    expected = signature(token, timestamp, nonce, encrypted)
    if not hmac.compare_digest(expected.encode("ascii"), (given or "").encode("utf-8")):
        raise CallbackCryptoError("signature does not match", BAD_SIGNATURE)


def pkcs7_pad(data: bytes, block: int = PAD_BLOCK) -> bytes:
    """Pad ``data`` PKCS#7-style to a multiple of ``block`` (always adds 1..block bytes)."""
    n = block - (len(data) % block)
    return data + bytes([n]) * n


def pkcs7_unpad(data: bytes, block: int = PAD_BLOCK) -> bytes:
    """Strip PKCS#7 padding of 1..``block`` bytes.

    Raises:
        CallbackCryptoError: ``bad_padding`` if the padding is absent or inconsistent.
    """
    if not data:
        raise CallbackCryptoError("empty plaintext has no padding", BAD_PADDING)
    n = data[-1]
    if not 1 <= n <= block or n > len(data):
        raise CallbackCryptoError("invalid padding length", BAD_PADDING)
    if data[-n:] != bytes([n]) * n:
        raise CallbackCryptoError("inconsistent padding bytes", BAD_PADDING)
    return data[:-n]


def decode_aes_key(aes_key: str) -> bytes:
    """The 32-byte AES key of a 43-character Base64 key.

    Raises:
        CallbackCryptoError: ``bad_key`` when it is not 43 Base64 characters.
    """
    if not isinstance(aes_key, str) or len(aes_key) != 43:
        raise CallbackCryptoError("the AES key must be 43 characters", BAD_KEY)
    try:
        key = base64.b64decode(aes_key + "=", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CallbackCryptoError("the AES key is not valid Base64", BAD_KEY) from exc
    if len(key) != 32:
        raise CallbackCryptoError("the AES key does not decode to 32 bytes", BAD_KEY)
    return key


class CallbackCipher:
    """AES-256-CBC with the platforms' framing, for one key and receive id.

    Args:
        aes_key: the 43-character key.
        receive_id: the id every plaintext ends with.

    Raises:
        CallbackCryptoError: ``bad_key`` if the key is unusable.
    """

    def __init__(self, aes_key: str, receive_id: str) -> None:
        self._key = decode_aes_key(aes_key)
        self._iv = self._key[:_AES_BLOCK]
        self.receive_id = receive_id
        self._receive_id_bytes = receive_id.encode("utf-8")

    def __repr__(self) -> str:  # never show the key
        return f"CallbackCipher(receive_id={self.receive_id!r})"

    def encrypt(self, text: str, random16: bytes | None = None) -> str:
        """Base64 of AES-256-CBC(random16 + len + text + receive id, padded to 32).

        Args:
            text: the message to encrypt.
            random16: the 16 leading random bytes; ``None`` draws them from
                :func:`os.urandom`. Pass fixed bytes only in tests.
        """
        if random16 is None:
            random16 = os.urandom(RANDOM_LEN)
        if len(random16) != RANDOM_LEN:
            raise ValueError("random16 must be exactly 16 bytes")
        msg = text.encode("utf-8")
        plain = random16 + struct.pack(">I", len(msg)) + msg + self._receive_id_bytes
        encryptor = Cipher(algorithms.AES(self._key), modes.CBC(self._iv)).encryptor()
        cipher = encryptor.update(pkcs7_pad(plain)) + encryptor.finalize()
        return base64.b64encode(cipher).decode("ascii")

    def decrypt(self, b64: str) -> str:
        """The message text of a Base64 ciphertext (no signature check: verify first).

        Raises:
            CallbackCryptoError: ``decrypt_failed`` (not Base64, wrong length, bad
                framing, not UTF-8), ``bad_padding`` or ``wrong_receive_id``.
        """
        try:
            cipher = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise CallbackCryptoError("ciphertext is not valid Base64", DECRYPT_FAILED) from exc
        if not cipher or len(cipher) % _AES_BLOCK:
            raise CallbackCryptoError("ciphertext length is not a multiple of 16",
                                      DECRYPT_FAILED)
        decryptor = Cipher(algorithms.AES(self._key), modes.CBC(self._iv)).decryptor()
        plain = pkcs7_unpad(decryptor.update(cipher) + decryptor.finalize())
        header = RANDOM_LEN + _LEN_FIELD
        if len(plain) < header:
            raise CallbackCryptoError("plaintext too short", DECRYPT_FAILED)
        (msg_len,) = struct.unpack(">I", plain[RANDOM_LEN:header])
        if header + msg_len > len(plain):
            raise CallbackCryptoError("message length exceeds plaintext", DECRYPT_FAILED)
        msg = plain[header : header + msg_len]
        receive_id = plain[header + msg_len :]
        if not hmac.compare_digest(receive_id, self._receive_id_bytes):
            raise CallbackCryptoError("receive id does not match", WRONG_RECEIVE_ID)
        try:
            return msg.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CallbackCryptoError("message is not valid UTF-8", DECRYPT_FAILED) from exc
