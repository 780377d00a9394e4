"""Shared fixtures for interop tests: the kopa binary and a running node on a free loopback port."""
