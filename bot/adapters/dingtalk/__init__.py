"""DingTalk (钉钉): an enterprise-internal app robot (企业内部应用机器人), two-way.

The package's modules:

* :mod:`~bot.adapters.dingtalk.adapter`: :class:`DingTalkAdapter` (receiving by Stream or
  callback, and the route each message is sent by; its docstring tells the whole story);
* :mod:`~bot.adapters.dingtalk.callback`: the HTTP callback routes and their checks (a
  signed timestamp used once, encrypted callbacks);
* :mod:`~bot.adapters.dingtalk.crypto`: encrypted callbacks (事件订阅 HTTP 推送), on the
  scheme shared with WeCom (:mod:`bot.adapters.callback_crypto`);
* :mod:`~bot.adapters.dingtalk.sessions`: session webhooks, only on DingTalk's hosts;
* :mod:`~bot.adapters.dingtalk.content`, :mod:`~bot.adapters.dingtalk.downloads`: a
  message's text, pictures and files;
* :mod:`~bot.adapters.dingtalk.render`: messages as DingTalk text or ActionCards;
* :mod:`~bot.adapters.dingtalk.api`: the API client (access token, sends, Stream
  registration, downloads of received files) and its error mapping;
* :mod:`~bot.adapters.dingtalk.sign`: callback and custom-robot signatures;
* :mod:`~bot.adapters.dingtalk.stream`: the Stream-mode WebSocket client;
* :mod:`~bot.adapters.media`: download helpers and texts for pictures and files.
"""

from __future__ import annotations

from bot.adapters.dingtalk.adapter import CALLBACK_PATH, EVENTS_PATH, ROBOT_CHAT_ID, DingTalkAdapter

__all__ = ["CALLBACK_PATH", "EVENTS_PATH", "ROBOT_CHAT_ID", "DingTalkAdapter"]
