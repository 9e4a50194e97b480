"""Periodic checks: quarterly inspection rounds with score sheets and rectification items, the annual report, annual training (issue 18 item 4)."""
