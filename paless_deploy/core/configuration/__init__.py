"""Configuration: what the tool runs with, read from flags, environment and env files.

The variables table, env-file parsing, each value's form, branch namespaces, durations,
and the RunContext one invocation carries.
"""
