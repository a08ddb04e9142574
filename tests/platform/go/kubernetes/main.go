// Package main exists so this wrapper module can pin k8s.io/kubernetes and its staging modules;
// build.sh builds k8s.io/kubernetes/cmd/{kube-apiserver,kube-scheduler,kube-controller-manager} from it.
package main

func main() {}
