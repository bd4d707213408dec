"""The real stack: the images the manifests name (PostgreSQL, Redis, MinIO, mc, rclone,
busybox, CoreDNS, the Paless stand-in) built offline and served by the sandbox registry under
those names, the real node's mirrors for them, and CoreDNS as the cluster DNS.

`PYTHONPATH=scripts python3 -m paless_sandbox.realstack [ensure|images|dns]`; docs/sandbox.md.
"""
