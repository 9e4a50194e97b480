"""The values one outbox delivery pass works with: where a row goes, what the pass did,
and the signal that a chat must wait for its rate limit."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import AdapterError

# Added to every rate window: the jitter of the network and of the platform around the
# shortest round trip that RateLimiter.settle credits a send with.
RATE_MARGIN_SECONDS = 0.01
# A pass waits for a global rate slot that frees within this long (sending the moment it
# does); a chat over its own limit, or the whole bot for longer, is set aside instead.
SLOT_WAIT_SECONDS = 1.5
# A chat free again within this long keeps its turn for the next global slot: a younger
# row of another chat may not take the last slots, or chats drift behind their queues.
# It covers the spread of one pass's sends (network latency, concurrency).
NEAR_READY_SECONDS = 0.3


@dataclass
class DeliveryReport:
    """What one :meth:`OutboxSender.deliver_due` pass did.

    Attributes:
        claimed: rows claimed.
        sent: rows the platform accepted (``edited`` included).
        edited: cards updated in place.
        retried: failed rows now waiting for a retry.
        dead: rows given up (admins told).
        waiting: rows to people bound on no platform, now waiting for them to bind.
        expired: waiting rows given up, their wait over (one summary per person).
        deferred: rows left pending because their chat was over its rate limit.
        set_aside: recipients newly skipped by the next passes until their chat may send.
        retry_in: seconds until a deferred chat may send (None: none waits).
        possible_duplicates: rows sent again after an attempt whose outcome was unknown
            (the request went out, the answer did not come back) on a platform that
            cannot drop a repeat: the person may have them twice.
        full: the claim took a whole batch (more rows may be due behind it).
    """

    claimed: int = 0
    sent: int = 0
    edited: int = 0
    retried: int = 0
    dead: int = 0
    waiting: int = 0
    expired: int = 0
    deferred: int = 0
    set_aside: int = 0
    retry_in: float | None = None
    possible_duplicates: int = 0
    full: bool = False

    @property
    def progressed(self) -> bool:
        """Another pass now may do more: rows left the queue, or busy chats were set
        aside so that the next claim reaches other chats."""
        return bool(self.sent or self.retried or self.dead or self.waiting or self.expired
                    or self.set_aside)

    @property
    def more_now(self) -> bool:
        """Another pass right away may deliver more: it progressed, and did something
        besides sending all it claimed from a claim that was not a whole batch (a pass
        that only sent a part batch found everything due; rows queued meanwhile wake the
        sender)."""
        if not self.progressed:
            return False
        return bool(self.full or self.retried or self.dead or self.waiting or self.expired
                    or self.set_aside or self.deferred)


@dataclass(frozen=True)
class Target:
    chat_id: str
    is_group: bool
    identity_id: int | None = None


#: ``last_error`` of a row once an attempt's outcome was unknown on a platform that cannot
#: drop a repeat; kept through later failures, so that the row's eventual send is counted
#: as a possible duplicate (``dutybot outbox`` shows the count).
POSSIBLE_DUPLICATE = "[possible duplicate] "


class UncertainDelivery(AdapterError):
    """The request reached the platform but its answer did not come back (a read
    timeout): the message may have been delivered. Retryable; the sender counts a later
    successful send as a possible duplicate unless the adapter says a resend is safe
    (``resend_is_safe``: the platform drops repeats, e.g. WeCom's duplicate check)."""


class Deferred(Exception):
    """A chat is over its rate limit; raised inside a pass, never escapes this module."""

    def __init__(self, wait: float) -> None:
        self.wait = wait


def recipient_key(person_id: int | None, chat_id: str | None) -> tuple[str, str]:
    return ("p", str(person_id)) if person_id is not None else ("c", chat_id or "")
