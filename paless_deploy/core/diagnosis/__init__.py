"""Diagnosis: what the cluster reports (status, events, logs) as Findings people can act on.

- `findings`: the Finding type, its codes, and the Policy that decides what is fatal;
- rules, pure and one module per subject: `pods`, `workloads` (ReplicaSet/StatefulSet
  FailedCreate, Deployment progress deadline, Job), `claims` (PVC), `deadline` (what is
  still waiting when time runs out);
- `hints`: the Paless knowledge the rules add to their advice, as tables;
- `lint`: warnings and policy-annotation errors found in rendered manifests at plan time;
- `eventlog` and `kubectl`: reading events, and the commands a finding suggests;
- `readiness`: is a live object ready, failed or in progress (rules per kind, as data);
- `status`: the state of a namespace as plain rows and a health line.

To add a failure rule: write it in the module of its subject, give its code a row in
`findings.CODES` (and the table of `findings`' docstring), and call it from the wait stage.
"""
