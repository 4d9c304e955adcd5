package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ordo-broker/ordo/broker"
	"go.yaml.in/yaml/v3"
)

// obj is one decoded manifest; at walks it by keys and list indexes.
type obj = map[string]any

func at(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any, path ...any) string { s, _ := at(v, path...).(string); return s }

func list(v any, path ...any) []any { l, _ := at(v, path...).([]any); return l }

func labels(v any, path ...any) map[string]string {
	out := map[string]string{}
	m, _ := at(v, path...).(map[string]any)
	for k, x := range m {
		out[k] = fmt.Sprint(x)
	}
	return out
}

// selects reports whether a selector's labels are all among labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// loadManifests decodes every document of every YAML file in dir.
func loadManifests(t *testing.T, dir string) []obj {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", dir, err)
	}
	var objs []obj
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var o obj
			if err := dec.Decode(&o); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if o == nil {
				continue
			}
			if str(o, "apiVersion") == "" || str(o, "kind") == "" || str(o, "metadata", "name") == "" {
				t.Fatalf("%s: a manifest without apiVersion, kind or metadata.name: %v", f, o)
			}
			objs = append(objs, o)
		}
	}
	return objs
}

// flags parses "--name=value" container arguments (the only form the
// manifests use, so that each is one list item).
func flags(t *testing.T, args []any) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, a := range args[1:] {
		s := fmt.Sprint(a)
		name, value, ok := strings.Cut(strings.TrimPrefix(s, "--"), "=")
		if !strings.HasPrefix(s, "--") || !ok {
			t.Fatalf("argument %q: want --name=value", s)
		}
		out[name] = value
	}
	return out
}

// knownFlags are `ordo node`'s flags.
func knownFlags() map[string]bool {
	known := map[string]bool{}
	for _, o := range broker.Options() {
		known[o.Flag()] = true
	}
	return known
}

// The Kubernetes manifests: a StatefulSet of three members behind a
// headless Service, readiness on /readyz of the metrics port, a
// PodDisruptionBudget, the cluster secret from a Secret. They are checked
// field by field for what would make the cluster not form or not be
// reachable: selectors that match no pod, a probe on a port nothing
// listens on, a secret mounted somewhere the flag does not point, a peer
// list that does not match the pods' DNS names.
func TestKubernetesManifests(t *testing.T) {
	objs := loadManifests(t, "kubernetes")
	byKind := map[string][]obj{}
	for _, o := range objs {
		byKind[str(o, "kind")] = append(byKind[str(o, "kind")], o)
	}
	want := map[string]string{"StatefulSet": "apps/v1", "Service": "v1", "PodDisruptionBudget": "policy/v1"}
	for kind, api := range want {
		if len(byKind[kind]) == 0 {
			t.Fatalf("no %s among %v", kind, slices.Sorted(maps.Keys(byKind)))
		}
		for _, o := range byKind[kind] {
			if str(o, "apiVersion") != api {
				t.Fatalf("%s %s: apiVersion %q, want %q", kind, str(o, "metadata", "name"), str(o, "apiVersion"), api)
			}
		}
	}
	if len(byKind["StatefulSet"]) != 1 {
		t.Fatalf("%d StatefulSets, want 1", len(byKind["StatefulSet"]))
	}
	sts := byKind["StatefulSet"][0]
	name := str(sts, "metadata", "name")
	if r := at(sts, "spec", "replicas"); r != 3 {
		t.Fatalf("replicas %v, want 3", r)
	}
	if p := str(sts, "spec", "podManagementPolicy"); p != "Parallel" {
		t.Fatalf("podManagementPolicy %q: members must start together (a pod is ready only once a majority is up)", p)
	}
	podLabels := labels(sts, "spec", "template", "metadata", "labels")
	if !selects(labels(sts, "spec", "selector", "matchLabels"), podLabels) {
		t.Fatalf("StatefulSet selector %v does not match its pods' labels %v", labels(sts, "spec", "selector", "matchLabels"), podLabels)
	}

	// The headless Service named by serviceName, publishing unready pods.
	peerSvc := str(sts, "spec", "serviceName")
	var headless obj
	for _, s := range byKind["Service"] {
		if !selects(labels(s, "spec", "selector"), podLabels) {
			t.Fatalf("Service %s selects %v, not the ordo pods %v", str(s, "metadata", "name"), labels(s, "spec", "selector"), podLabels)
		}
		if str(s, "metadata", "name") == peerSvc {
			headless = s
		}
	}
	if headless == nil || str(headless, "spec", "clusterIP") != "None" {
		t.Fatalf("serviceName %q is not a headless Service (clusterIP: None)", peerSvc)
	}
	if at(headless, "spec", "publishNotReadyAddresses") != true {
		t.Fatal("the headless Service must publish not-ready pods: members find each other before any is ready")
	}

	// The PodDisruptionBudget.
	pdb := byKind["PodDisruptionBudget"][0]
	if at(pdb, "spec", "maxUnavailable") != 1 || !selects(labels(pdb, "spec", "selector", "matchLabels"), podLabels) {
		t.Fatalf("PodDisruptionBudget: want maxUnavailable 1 and a selector of the ordo pods: %v", at(pdb, "spec"))
	}

	// The container: flags, ports, probes, volumes.
	pod := at(sts, "spec", "template", "spec")
	containers := list(pod, "containers")
	if len(containers) != 1 {
		t.Fatalf("%d containers, want 1", len(containers))
	}
	c := containers[0]
	args := list(c, "args")
	if len(args) == 0 || args[0] != "node" {
		t.Fatalf("container args %v: want `node` and its flags", args)
	}
	f := flags(t, args)
	known := knownFlags()
	for k := range f {
		if !known[k] {
			t.Fatalf("--%s is not a flag of `ordo node`", k)
		}
	}
	ports := map[string]int{}
	for _, p := range list(c, "ports") {
		ports[str(p, "name")], _ = at(p, "containerPort").(int)
	}
	if _, port, _ := strings.Cut(f["metrics-addr"], ":"); port != fmt.Sprint(ports["metrics"]) {
		t.Fatalf("--metrics-addr=%s but the container's metrics port is %d", f["metrics-addr"], ports["metrics"])
	}
	if f["port"] != fmt.Sprint(ports["redis"]) {
		t.Fatalf("--port=%s but the container's redis port is %d", f["port"], ports["redis"])
	}
	for probe, path := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz"} {
		if got := str(c, probe, "httpGet", "path"); got != path {
			t.Fatalf("%s path %q, want %q", probe, got, path)
		}
		if port := at(c, probe, "httpGet", "port"); port != "metrics" && port != ports["metrics"] {
			t.Fatalf("%s on port %v, not the metrics port", probe, port)
		}
	}
	mounts := map[string]string{}
	for _, m := range list(c, "volumeMounts") {
		mounts[str(m, "name")] = str(m, "mountPath")
	}
	var claims []string
	for _, v := range list(sts, "spec", "volumeClaimTemplates") {
		claims = append(claims, str(v, "metadata", "name"))
		if list(v, "spec", "accessModes") == nil || str(v, "spec", "resources", "requests", "storage") == "" {
			t.Fatalf("volumeClaimTemplate %s without access modes or size", str(v, "metadata", "name"))
		}
	}
	if len(claims) != 1 || mounts[claims[0]] != f["data-dir"] {
		t.Fatalf("the data directory --data-dir=%s must be the mount of the one volumeClaimTemplate %v (mounts %v)", f["data-dir"], claims, mounts)
	}
	var secretVol, secretName string
	for _, v := range list(pod, "volumes") {
		if s := str(v, "secret", "secretName"); s != "" {
			secretVol, secretName = str(v, "name"), s
		}
	}
	if secretName == "" || mounts[secretVol] == "" {
		t.Fatalf("no Secret volume mounted into the container (volumes %v, mounts %v)", list(pod, "volumes"), mounts)
	}
	if dir := filepath.Dir(f["cluster-secret-file"]); dir != mounts[secretVol] {
		t.Fatalf("--cluster-secret-file=%s is not in the Secret %s's mount %s", f["cluster-secret-file"], secretName, mounts[secretVol])
	}

	// Identity: node id from the pod index, peers by stable DNS names,
	// --advertise per pod.
	env := map[string]string{}
	for _, e := range list(c, "env") {
		env[str(e, "name")] = str(e, "valueFrom", "fieldRef", "fieldPath")
	}
	if env["ORDO_ID"] != "metadata.labels['apps.kubernetes.io/pod-index']" || env["POD_NAME"] != "metadata.name" {
		t.Fatalf("want ORDO_ID from the pod index and POD_NAME from the pod name: %v", env)
	}
	start, _ := at(sts, "spec", "ordinals", "start").(int)
	// Clients from other pods are not on loopback: without a password,
	// protected mode would refuse them all.
	if ref := str(envVar(c, "ORDO_REQUIREPASS"), "valueFrom", "secretKeyRef", "name"); ref == "" {
		t.Fatal("ORDO_REQUIREPASS must come from a Secret: a node on 0.0.0.0 without a password refuses non-loopback clients (protected mode)")
	}
	if start < 1 {
		t.Fatalf("ordinals.start %d: node ids start at 1, and a pod's index is its id", start)
	}
	var peers []string
	for i := start; i < start+3; i++ {
		peers = append(peers, fmt.Sprintf("%d:%s-%d.%s:%d", i, name, i, peerSvc, ports["redis"]))
	}
	if f["peers"] != strings.Join(peers, ",") {
		t.Fatalf("--peers=%s, want %s (the pods' stable names)", f["peers"], strings.Join(peers, ","))
	}
	if f["advertise"] != fmt.Sprintf("$(POD_NAME).%s:%d", peerSvc, ports["redis"]) {
		t.Fatalf("--advertise=%s: want the pod's own stable name", f["advertise"])
	}
	if f["host"] != "0.0.0.0" {
		t.Fatalf("--host=%s: a pod must listen on its network interface", f["host"])
	}
}

// envVar is the container's environment entry called name (nil if none).
func envVar(c any, name string) any {
	for _, e := range list(c, "env") {
		if str(e, "name") == name {
			return e
		}
	}
	return nil
}
