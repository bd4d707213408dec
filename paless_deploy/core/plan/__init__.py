"""Plan: what to do, in which order, and whether it may start.

Phases, preflight references, the namespace lock's rules and dev's loop decisions.
"""
