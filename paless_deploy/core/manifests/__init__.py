"""Manifests: the Kubernetes objects the tool renders and reasons about.

Rendering, the kind table, labels, reading objects and their pod specs, quantities,
components, ownership, namespaces and the live-versus-applied diff.
"""
