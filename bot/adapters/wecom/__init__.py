"""WeCom (企业微信) self-built app: two-way chat through the app's callback and message API.

The package's modules:

* :mod:`~bot.adapters.wecom.adapter`: :class:`WeComAdapter`, described below;
* :mod:`~bot.adapters.wecom.api`: the HTTP client (access token, errors, app messages,
  the group robot webhook); :mod:`~bot.adapters.wecom.cards` builds template cards;
* :mod:`~bot.adapters.wecom.crypto`: the callback signature and encryption;
* :mod:`~bot.adapters.wecom.support`: text cuts, card layout, the per-member message
  budget, update ids and the settings check;
* :mod:`~bot.adapters.media`: download helpers and texts for pictures and files.

Receiving: WeCom calls ``/wecom/callback`` on the HTTP service (:mod:`bot.http`).

* ``GET`` is the URL check WeCom makes when the callback is saved in the admin console:
  the signature and timestamp are verified, ``echostr`` is decrypted and its plaintext is
  the answer (no database work).
* ``POST`` carries one encrypted message. The signature and the timestamp's freshness are
  checked before anything is decrypted (a refusal is a 403 and a log line), then the
  message is decrypted (the receive id must be our corp id) and parsed. Stored first,
  answered after: the update is handled in a task (updates of one person one after
  another, in the order they arrived; tasks are awaited by :meth:`WeComAdapter.stop`) and
  the callback waits for it: an empty 200 once it is committed, 500 when it could not be
  stored (WeCom retries any answer but 200), 503 when it is still running after
  ``ack_deadline`` (4 s; WeCom gives up at 5 s and retries — the retry joins the running
  attempt, or is ignored by the ledger once it committed). Pictures and files are still
  answered at once and downloaded in the background.

Exactly once: the dispatcher's update ledger records ``update_id`` (``msg:<MsgId>`` for
text, ``evt:<user>:<CreateTime>:<EventKey>`` for a button click), so WeCom's retries of
the same callback are handled once. An update that could not be stored is answered 500
and handled when WeCom retries it (the person gets one apology, sent directly:
:meth:`bot.app.App.handle`).

Sending twice: a send whose answer is lost (read timeout) is retried by the outbox; the
client asks WeCom's duplicate check (``enable_duplicate_check``, within
``duplicate_check_interval``) to drop an identical request, so the retry is safe.

What is understood: text messages and ``template_card_event`` (a button click; the
button's key *is* its command, so a click maps straight back to the typed command), and
pictures and files (``image``, ``file``): these are downloaded at once with ``media/get``
(streamed, refused past ``max_media_bytes``, by default ``[incidents] fetch_max_bytes``'s
10 MB) and handed to the bot as an update without text (update id ``msg:<MsgId>``) whose
attachment the dispatcher holds for the sender's next ``/incident evidence 编号 说明``
(:mod:`bot.held_media`); a failed download is told to the sender here (nothing is kept;
the reason is logged). Voice and video get a hint that only pictures and files are kept. Other
events (``enter_agent``, ``subscribe``, …) and message types (locations, links) are
ignored with a log line. The self-built app receives private messages only, so every
inbound is ``is_group=False``.

Sending (:meth:`WeComAdapter.send`):

* chat id ``robot`` → the group robot webhook (``[wecom] robot_webhook``) as plain text,
  buttons shown as typed commands (a robot has no callbacks);
* any other chat id is a member's userid → an app message: plain ``text`` without buttons,
  with buttons a template card (:func:`~bot.adapters.wecom.support.card_layout`: a long
  text goes first as a text message, then a compact card). Texts are cut to 2048 bytes.

WeCom cannot edit a sent app message (``edit=False``): the outbox sends a new message
where it would have edited a card. After a click the clicked card's buttons are replaced by
a disabled ``已提交`` (``update_template_card`` with the click's ``ResponseCode``), so the
same card is not pressed twice.

Limits: WeCom *silently drops* app messages beyond 30 a minute or 1000 an hour to one
member, so both are declared in ``limits`` for the outbox sender, as are the robot's 20 a
minute. A long card is two messages for one outbox send: the second is sent only when the
member's :class:`~bot.adapters.wecom.support.MemberBudget` has room (otherwise the card
goes alone, its body cut); should the budget be spent all the same, ``send`` raises a
retryable ``AdapterError`` with ``retry_after`` rather than let WeCom drop the message.

Errors come from :mod:`bot.adapters.wecom.api` as :class:`~core.errors.AdapterError`: a
recipient WeCom cannot reach (errcode 81013, or the userid in ``invaliduser``) is
``permanent_reason="blocked"``; network errors, 5xx and frequency limits are retryable.
"""

from __future__ import annotations

from bot.adapters.wecom.adapter import CALLBACK_PATH, ROBOT_CHAT_ID, WeComAdapter

__all__ = ["CALLBACK_PATH", "ROBOT_CHAT_ID", "WeComAdapter"]
