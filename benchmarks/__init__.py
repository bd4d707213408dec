"""Benchmarks of paless-deploy on the sandbox, run by `scripts/bench`.

harness: the sandbox, subprocesses (time, peak RSS), namespaces; tools: paless-deploy,
Helm, kubectl and the old script, each deploying a target; nodes: the benchmark's own
kwok nodes; tree: the generated N apps x 10 objects; stack: the Paless stack section
(first deploy, no-op, change, failures); failures: failure detection; scale: the --scale
section; report: medians, ratios, targets as a markdown table or JSON; cli: the run.
"""
