"""Tests of the fake service (:mod:`memories_async.testing`).

Its endpoints, access and rate limits, faults, strict quotas, library, server and
pytest plugin, and its public namespace.
"""
