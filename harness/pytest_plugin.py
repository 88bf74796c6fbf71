"""The pytest face of feed-harness (entry point ``pytest11``).

It stays out of the way of projects that use pytest without it: until one of the
``--feed-*`` options is given it registers its options and nothing else.
"""
