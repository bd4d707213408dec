"""Images: which apps this project builds, how they are tagged, and how they reach nodes.

Image references, discovery, build settings, content tags, the delivery decision and the
registry-access rules.
"""
