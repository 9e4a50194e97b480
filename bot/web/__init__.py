"""The web board (值班看板, issue 20): read-only pages for leaders and the district office,
plus acknowledge / take / step done through the same domain calls as chat.

``auth`` (one-time links, sessions, CSRF, iCal feed tokens), ``scope`` (who sees which
unit), ``board`` (the request plumbing), one module per page group (``pages_duty``,
``pages_incidents``, ``pages_more``), ``routes`` (``web_routes(app)``), ``templates/`` and
``static/``. Signing in starts in chat: ``/web`` (``bot/handlers/web.py``).
"""
