"""The daily briefing (早报) and the weekly summary (周报).

``service`` builds the text from the database (no sending); ``flows`` holds the cron jobs
that queue it for the leaders, the principals and the duty group.
"""
