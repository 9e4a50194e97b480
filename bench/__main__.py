"""``python -m bench``: every benchmark with small sizes (see ``bench/run_all.py``)."""

from bench.run_all import main

main()
