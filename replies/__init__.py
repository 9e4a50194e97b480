"""Replies to the public (互动回应): items with legal reply deadlines (DOMAIN.md §6)."""
