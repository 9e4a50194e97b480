"""``python -m bot.cli``: the same as the ``dutybot`` console script."""

from bot.cli.main import main

raise SystemExit(main())
