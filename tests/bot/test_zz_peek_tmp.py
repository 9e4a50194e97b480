import asyncio
from hypothesis import HealthCheck, given, settings
from tests.bot.test_fuzz_commands import ARGS, world  # noqa: F401
import pytest

SEEN = []

@pytest.mark.parametrize("command", ["incident", "reply", "people", "swap", "due"])
@settings(max_examples=12, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(args=ARGS)
def test_peek(world, command, args):
    chat, loop = world
    line = f"/{command} {args}"
    r = loop.run_until_complete(chat.send(line, as_="张伟"))
    print(repr(line[:80]), "=>", repr(r[:90]))
