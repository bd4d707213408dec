// Command etcd is the etcd server at the version Kubernetes pins, built inside
// the sandbox's wrapper module so its dependency versions match the API server's.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
