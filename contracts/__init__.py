"""The mediarithmics audience-feed wire contract as pydantic v2 models.

Depends on pydantic only; nothing else of this project is imported here.
"""
