"""The test suite of memories-async: a package, so that its helpers import as ``tests._virtual``."""
