"""Plays the mediarithmics platform, drives a connector, checks the conformance clauses."""

__version__ = "0.1.0"
