"""Fake platform servers on 127.0.0.1, driven by the tests."""
