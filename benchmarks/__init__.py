"""Benchmarks of paless-deploy on the sandbox, run by `scripts/bench`.

harness: the sandbox and the commands; detection: failure-to-report latency;
report: medians, ratios, targets as a markdown table or JSON; cli: the run itself.
"""
