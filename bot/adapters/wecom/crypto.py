"""WeCom (企业微信) callback encryption, written from the published protocol.

Pure functions and one small class — no network, no I/O, no clock reads: every check
that depends on the current time takes ``now`` (Unix seconds) from the caller.

Protocol summary (企业微信「回调和回复的加解密方案」):

* **Signature** — ``msg_signature`` is the SHA-1 hex digest of the four strings
  ``token``, ``timestamp``, ``nonce`` and the encrypted text, sorted lexicographically
  and concatenated.
* **Key** — the 43-character ``EncodingAESKey`` plus ``"="`` is Base64 for the 32-byte
  AES key. The IV is the first 16 bytes of the key.
* **Cipher** — AES-256-CBC with PKCS#7 padding to a multiple of **32** bytes (so 1..32
  bytes of padding are always added).
* **Plaintext** — 16 random bytes, the 4-byte big-endian length of the message, the
  UTF-8 message, then the receive id (the corp id for an internal app).

The signature is always verified *before* anything is decrypted, so padding or
framing errors are never reachable by someone who does not know the token.

Every failure raises :class:`WeComCryptoError` with a stable ``code``. The signature,
key, cipher and padding are shared with DingTalk (:mod:`bot.adapters.callback_crypto`);
this module adds WeCom's XML envelope, its seconds timestamp and the passive reply.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Final

from bot.adapters.callback_crypto import (
    BAD_KEY,
    BAD_PADDING,
    BAD_SIGNATURE,
    DECRYPT_FAILED,
    PAD_BLOCK,
    WRONG_RECEIVE_ID,
    CallbackCipher,
    CallbackCryptoError,
    check_signature,
    pkcs7_pad,
    pkcs7_unpad,
    signature,
)

__all__ = [
    "BAD_KEY",
    "BAD_PADDING",
    "BAD_SIGNATURE",
    "BAD_TIMESTAMP",
    "BAD_XML",
    "DECRYPT_FAILED",
    "PAD_BLOCK",
    "STALE_TIMESTAMP",
    "WRONG_RECEIVE_ID",
    "WeComCrypto",
    "WeComCryptoError",
    "parse_message",
    "pkcs7_pad",
    "pkcs7_unpad",
    "signature",
]

# Stable error codes of WeCom's own checks (the shared ones come from callback_crypto).
STALE_TIMESTAMP: Final = "stale_timestamp"
BAD_TIMESTAMP: Final = "bad_timestamp"
BAD_XML: Final = "bad_xml"

#: The error every WeCom check raises: the shared callback error, under WeCom's name.
WeComCryptoError = CallbackCryptoError

_TIMESTAMP_RE: Final = re.compile(r"[0-9]{1,12}")
_DTD_RE: Final = re.compile(r"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)


def _check_no_dtd(text: str) -> None:
    if _DTD_RE.search(text):
        raise WeComCryptoError("XML with DOCTYPE/ENTITY declarations is refused", BAD_XML)


def _parse_xml(data: bytes | str) -> ET.Element:
    """Parse untrusted XML whose root must be ``<xml>``; DTDs are refused."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise WeComCryptoError("XML is not valid UTF-8", BAD_XML) from exc
    elif isinstance(data, str):
        text = data
    else:
        raise WeComCryptoError("XML must be bytes or str", BAD_XML)
    # Drop a byte-order mark so an XML declaration still comes first.
    text = text.removeprefix("\ufeff")
    _check_no_dtd(text)
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise WeComCryptoError(f"malformed XML: {exc}", BAD_XML) from exc
    if root.tag != "xml":
        raise WeComCryptoError(f"unexpected XML root <{root.tag}>", BAD_XML)
    return root


def parse_message(inner_xml: bytes | str) -> dict[str, str]:
    """Flatten a decrypted WeCom message into ``{element name: text}``.

    Only direct children of ``<xml>`` without child elements of their own are kept
    (ToUserName, FromUserName, CreateTime, MsgType, Content, MsgId, AgentID, Event,
    EventKey, TaskId, CardType, ResponseCode, …). Nested structures such as the
    ``SelectedItems`` of a ``template_card_event`` are skipped. Text is returned as
    is (CDATA unwrapped, not stripped); an empty element maps to ``""``. If a name
    occurs twice, the first occurrence wins.

    Raises:
        WeComCryptoError: ``bad_xml`` for malformed XML, a root other than ``<xml>``,
            or any DOCTYPE/ENTITY declaration.
    """
    root = _parse_xml(inner_xml)
    fields: dict[str, str] = {}
    for child in root:
        if len(child) or not isinstance(child.tag, str):
            continue
        fields.setdefault(child.tag, child.text or "")
    return fields


def _cdata(value: str) -> str:
    if "]]>" in value:
        raise ValueError("value cannot be placed in a CDATA section")
    return f"<![CDATA[{value}]]>"


class WeComCrypto:
    """Verify, decrypt and encrypt WeCom callbacks for one app.

    Args:
        token: the callback Token from the WeCom admin console.
        encoding_aes_key: the 43-character EncodingAESKey.
        receive_id: the id the plaintext must end with (the corp id for an
            internally developed app).
        max_skew_seconds: how far the callback ``timestamp`` may be from ``now``.

    Raises:
        WeComCryptoError: ``bad_key`` if the EncodingAESKey is unusable.
    """

    def __init__(
        self,
        token: str,
        encoding_aes_key: str,
        receive_id: str,
        *,
        max_skew_seconds: float = 300,
    ) -> None:
        self.token = token
        self.receive_id = receive_id
        self.max_skew_seconds = max_skew_seconds
        self._cipher = CallbackCipher(encoding_aes_key, receive_id)

    def __repr__(self) -> str:  # never show the token or key
        return f"WeComCrypto(receive_id={self.receive_id!r})"

    # -- low level -----------------------------------------------------------------

    def encrypt(self, text: str, random16: bytes | None = None) -> str:
        """Encrypt ``text`` into WeCom's Base64 ciphertext.

        Args:
            text: the message (usually XML) to encrypt.
            random16: the 16 leading random bytes; ``None`` draws them from
                :func:`os.urandom`. Pass fixed bytes only in tests.

        Returns:
            Base64 of AES-256-CBC(random16 + len + msg + receive_id, padded to 32).
        """
        return self._cipher.encrypt(text, random16)

    def decrypt(self, b64: str) -> str:
        """Decrypt WeCom's Base64 ciphertext and return the message text.

        This does **not** check a signature; callers handling requests should use
        :meth:`verify_url` or :meth:`decrypt_message`.

        Raises:
            WeComCryptoError: ``decrypt_failed`` (not Base64, wrong length, bad
                framing, not UTF-8), ``bad_padding`` or ``wrong_receive_id``.
        """
        return self._cipher.decrypt(b64)

    # -- request handling ----------------------------------------------------------

    def _check(
        self, msg_signature: str, timestamp: str, nonce: str, encrypted: str, now: float
    ) -> None:
        """Check timestamp syntax, the signature, then the timestamp's freshness."""
        if not isinstance(timestamp, str) or not _TIMESTAMP_RE.fullmatch(timestamp):
            raise WeComCryptoError("timestamp is not a decimal number", BAD_TIMESTAMP)
        check_signature(self.token, timestamp, nonce, encrypted, msg_signature)
        if abs(now - int(timestamp)) > self.max_skew_seconds:
            raise WeComCryptoError("timestamp is outside the allowed skew", STALE_TIMESTAMP)

    def verify_url(
        self, msg_signature: str, timestamp: str, nonce: str, echostr: str, now: float
    ) -> str:
        """Handle the GET verification request when the callback URL is saved.

        Args:
            msg_signature, timestamp, nonce, echostr: the URL-decoded query values.
            now: current Unix time in seconds.

        Returns:
            The plaintext ``echostr`` to send back as the response body.

        Raises:
            WeComCryptoError: on a bad signature, stale/invalid timestamp or bad
                ciphertext.
        """
        self._check(msg_signature, timestamp, nonce, echostr, now)
        return self.decrypt(echostr)

    def decrypt_message(
        self,
        msg_signature: str,
        timestamp: str,
        nonce: str,
        body_xml: bytes | str,
        now: float,
    ) -> str:
        """Verify and decrypt a POSTed callback.

        Args:
            msg_signature, timestamp, nonce: the URL-decoded query values.
            body_xml: the request body, ``<xml>…<Encrypt><![CDATA[…]]></Encrypt>…</xml>``.
            now: current Unix time in seconds.

        Returns:
            The decrypted inner XML (feed it to :func:`parse_message`).

        Raises:
            WeComCryptoError: ``bad_xml`` if the envelope is malformed or has no
                ``<Encrypt>``, else as for :meth:`verify_url`.
        """
        root = _parse_xml(body_xml)
        node = root.find("Encrypt")
        encrypted = (node.text or "").strip() if node is not None else ""
        if not encrypted:
            raise WeComCryptoError("envelope has no <Encrypt> value", BAD_XML)
        self._check(msg_signature, timestamp, nonce, encrypted, now)
        return self.decrypt(encrypted)

    def encrypt_reply(
        self,
        plain_xml: str,
        nonce: str,
        timestamp: str | int,
        random16: bytes | None = None,
    ) -> str:
        """Build the encrypted envelope for a passive reply.

        Args:
            plain_xml: the reply message XML.
            nonce: the nonce to sign with (e.g. the one from the request).
            timestamp: Unix seconds to sign with.
            random16: fixed random prefix for tests; ``None`` for real use.

        Returns:
            ``<xml><Encrypt>…</Encrypt><MsgSignature>…</MsgSignature>``
            ``<TimeStamp>…</TimeStamp><Nonce>…</Nonce></xml>``.
        """
        ts = str(timestamp)
        if not _TIMESTAMP_RE.fullmatch(ts):
            raise ValueError("timestamp must be a decimal number")
        encrypted = self.encrypt(plain_xml, random16)
        sig = signature(self.token, ts, nonce, encrypted)
        return (
            f"<xml><Encrypt>{_cdata(encrypted)}</Encrypt>"
            f"<MsgSignature>{_cdata(sig)}</MsgSignature>"
            f"<TimeStamp>{ts}</TimeStamp>"
            f"<Nonce>{_cdata(nonce)}</Nonce></xml>"
        )
