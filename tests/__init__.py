"""The test suite, laid out like the ``marketplace`` package; shared fixtures are in ``conftest.py``."""
