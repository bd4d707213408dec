"""The kubectl commands a finding suggests, with names and namespace filled in.

Written for people to paste: every command is read-only.
"""

from __future__ import annotations

NODES_CMD = ("kubectl get nodes -o custom-columns=NAME:.metadata.name,CPU:.status.allocatable.cpu,"
             "MEMORY:.status.allocatable.memory,TAINTS:.spec.taints[*].key")
PVS_CMD = ("kubectl get pv -o custom-columns=NAME:.metadata.name,CLASS:.spec.storageClassName,"
           "CAPACITY:.spec.capacity.storage,MODES:.spec.accessModes,STATUS:.status.phase,"
           "CLAIM:.spec.claimRef.name")


def describe_cmd(ns: str, kind: str, name: str) -> str:
    """`kubectl describe` of one object."""
    return f"kubectl -n {ns} describe {kind.lower()} {name}"


def events_cmd(ns: str, name: str) -> str:
    """The events of one object, oldest first."""
    return (f"kubectl -n {ns} get events --field-selector involvedObject.name={name} "
            "--sort-by=.lastTimestamp")


def logs_cmd(ns: str, pod: str, container: str, previous: bool = True) -> str:
    """A container's logs; by default those of its previous (crashed) instance."""
    return f"kubectl -n {ns} logs {pod} -c {container}" + (" --previous" if previous else "")
