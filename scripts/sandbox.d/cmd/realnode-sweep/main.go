// Command realnode-sweep stops and removes every pod sandbox of one CRI runtime, so the
// runtime tears down each pod's network (CNI DEL: veth, IP, port mappings) and unmounts
// its network namespace and shm before the sandbox stops it.
//
// Usage: realnode-sweep unix:///path/to/containerd.sock
//
// With --ready it removes nothing: it waits (at most a minute) until the runtime's CRI
// service answers Status, which containerd's does only once its CRI plugin is initialized
// (a kubelet started before that exits: "server is not initialized yet").
//
// Usage: realnode-sweep --ready unix:///path/to/containerd.sock
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "--ready" {
		if err := ready(os.Args[2]); err != nil {
			fmt.Fprintf(os.Stderr, "realnode-sweep: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: realnode-sweep unix:///path/to/containerd.sock")
		os.Exit(2)
	}
	if err := sweep(os.Args[1]); err != nil {
		fmt.Fprintf(os.Stderr, "realnode-sweep: %v\n", err)
		os.Exit(1)
	}
}

// runtime is a CRI client of the runtime at endpoint, and what closes it.
func runtime(endpoint string) (runtimeapi.RuntimeServiceClient, func() error, error) {
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, err
	}
	return runtimeapi.NewRuntimeServiceClient(conn), conn.Close, nil
}

func ready(endpoint string) error {
	rt, done, err := runtime(endpoint)
	if err != nil {
		return err
	}
	defer done()
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := rt.Status(ctx, &runtimeapi.StatusRequest{})
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the CRI service at %s did not answer within a minute: %w", endpoint, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func sweep(endpoint string) error {
	rt, done, err := runtime(endpoint)
	if err != nil {
		return err
	}
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pods, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return fmt.Errorf("listing pod sandboxes at %s: %w", endpoint, err)
	}
	failed := 0
	for _, pod := range pods.Items {
		name := pod.Metadata.Namespace + "/" + pod.Metadata.Name
		if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod.Id}); err != nil {
			fmt.Fprintf(os.Stderr, "stopping pod %s (%s): %v\n", name, pod.Id[:12], err)
			failed++
			continue
		}
		if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod.Id}); err != nil {
			fmt.Fprintf(os.Stderr, "removing pod %s (%s): %v\n", name, pod.Id[:12], err)
			failed++
			continue
		}
		fmt.Printf("removed pod %s (%s)\n", name, pod.Id[:12])
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d pod sandboxes could not be removed", failed, len(pods.Items))
	}
	return nil
}
