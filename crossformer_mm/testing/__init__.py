"""Helpers shared by the tests, `make demo` and the toy learning checks."""
