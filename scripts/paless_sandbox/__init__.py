"""The local sandbox (`scripts/sandbox`): a real Kubernetes control plane with kwok nodes, one
real node, Docker and a registry; standard library only, since it runs before the project is
installed."""
