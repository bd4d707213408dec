// Command local-path-provisioner is the sandbox's stand-in for k3s' local-path
// provisioner: it creates a hostPath PersistentVolume for each claim of a class
// it serves once the scheduler has picked a node, and deletes released volumes.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

const (
	selectedNodeAnn  = "volume.kubernetes.io/selected-node"
	provisionedByAnn = "pv.kubernetes.io/provisioned-by"
)

type provisioner struct {
	client  kubernetes.Interface
	name    string
	root    string
	classes cache.Indexer
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the sandbox cluster")
	name := flag.String("provisioner-name", "rancher.io/local-path", "provisioner name served")
	root := flag.String("root", "/var/lib/paless-sandbox/local-path", "directory holding the volumes")
	flag.Parse()

	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		klog.Fatalf("kubeconfig: %v", err)
	}
	client := kubernetes.NewForConfigOrDie(cfg)
	factory := informers.NewSharedInformerFactory(client, 10*time.Minute)
	p := &provisioner{client: client, name: *name, root: *root}

	classInformer := factory.Storage().V1().StorageClasses().Informer()
	p.classes = classInformer.GetIndexer()
	pvcInformer := factory.Core().V1().PersistentVolumeClaims().Informer()
	pvInformer := factory.Core().V1().PersistentVolumes().Informer()

	onClaim := func(obj interface{}) {
		if pvc, ok := obj.(*corev1.PersistentVolumeClaim); ok {
			p.provision(pvc)
		}
	}
	pvcInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    onClaim,
		UpdateFunc: func(_, n interface{}) { onClaim(n) },
	})
	onVolume := func(obj interface{}) {
		if pv, ok := obj.(*corev1.PersistentVolume); ok {
			p.reclaim(pv)
		}
	}
	pvInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    onVolume,
		UpdateFunc: func(_, n interface{}) { onVolume(n) },
	})

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	klog.Infof("serving provisioner %s, volumes under %s", p.name, p.root)
	<-ctx.Done()
}

func (p *provisioner) class(name string) *storagev1.StorageClass {
	obj, ok, err := p.classes.GetByKey(name)
	if err != nil || !ok {
		return nil
	}
	return obj.(*storagev1.StorageClass)
}

func (p *provisioner) provision(pvc *corev1.PersistentVolumeClaim) {
	if pvc.Spec.VolumeName != "" || pvc.Status.Phase != corev1.ClaimPending || pvc.DeletionTimestamp != nil {
		return
	}
	if pvc.Spec.StorageClassName == nil {
		return
	}
	sc := p.class(*pvc.Spec.StorageClassName)
	if sc == nil || sc.Provisioner != p.name {
		return
	}
	node := pvc.Annotations[selectedNodeAnn]
	if node == "" && (sc.VolumeBindingMode == nil || *sc.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer) {
		return // the scheduler has not picked a node yet
	}
	pvName := "pvc-" + string(pvc.UID)
	dir := filepath.Join(p.root, fmt.Sprintf("%s_%s_%s", pvName, pvc.Namespace, pvc.Name))
	if err := os.MkdirAll(dir, 0o777); err != nil {
		klog.Errorf("mkdir %s: %v", dir, err)
	}
	reclaim := corev1.PersistentVolumeReclaimDelete
	if sc.ReclaimPolicy != nil {
		reclaim = *sc.ReclaimPolicy
	}
	hostPathType := corev1.HostPathDirectoryOrCreate
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        pvName,
			Annotations: map[string]string{provisionedByAnn: p.name},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: pvc.Spec.Resources.Requests[corev1.ResourceStorage]},
			AccessModes:                   pvc.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              sc.Name,
			VolumeMode:                    pvc.Spec.VolumeMode,
			ClaimRef: &corev1.ObjectReference{
				Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID,
			},
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: dir, Type: &hostPathType},
			},
		},
	}
	if node != "" {
		pv.Spec.NodeAffinity = &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
				Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{node},
			}}}},
		}}
	}
	_, err := p.client.CoreV1().PersistentVolumes().Create(context.Background(), pv, metav1.CreateOptions{})
	switch {
	case err == nil:
		klog.Infof("provisioned %s for %s/%s on node %q", pvName, pvc.Namespace, pvc.Name, node)
	case apierrors.IsAlreadyExists(err):
	default:
		klog.Errorf("create %s: %v", pvName, err)
	}
}

func (p *provisioner) reclaim(pv *corev1.PersistentVolume) {
	if pv.Annotations[provisionedByAnn] != p.name || pv.Status.Phase != corev1.VolumeReleased ||
		pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete || pv.DeletionTimestamp != nil {
		return
	}
	if pv.Spec.HostPath != nil {
		_ = os.RemoveAll(pv.Spec.HostPath.Path)
	}
	err := p.client.CoreV1().PersistentVolumes().Delete(context.Background(), pv.Name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		klog.Errorf("delete %s: %v", pv.Name, err)
		return
	}
	klog.Infof("deleted released volume %s", pv.Name)
}
