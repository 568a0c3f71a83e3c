package cri

import (
	"encoding/base64"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/hako-project/hako/engine"
)

// What the CRI keeps in the engine's records (Extra): the request's
// config as protobuf, so status and list answer with exactly what kubelet
// sent, and a few decisions made at create.
const (
	keyKind    = "cri.kind"     // kindPod or kindContainer
	keyConfig  = "cri.config"   // base64 protobuf PodSandboxConfig / ContainerConfig
	keyRuntime = "cri.runtime"  // the pod's runtime handler
	keyIPs     = "cri.ips"      // the pod's IPs, comma-separated, primary first
	keyImage   = "cri.image"    // the image as the CreateContainer request named it
	keyLogPath = "cri.log-path" // the CRI log (the shim writes it: engine/taskshim.go)

	kindPod       = "pod"
	kindContainer = "container"
)

func encodeProto(m proto.Message) (string, error) {
	b, err := proto.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encode %T: %w", m, err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

func podConfig(rec engine.SandboxRecord) (*runtimeapi.PodSandboxConfig, error) {
	cfg := &runtimeapi.PodSandboxConfig{}
	b, err := base64.StdEncoding.DecodeString(rec.Extra[keyConfig])
	if err == nil {
		err = proto.Unmarshal(b, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("pod sandbox %s: unreadable config: %w", rec.ID, err)
	}
	return cfg, nil
}

func containerConfig(rec engine.Record) (*runtimeapi.ContainerConfig, error) {
	cfg := &runtimeapi.ContainerConfig{}
	b, err := base64.StdEncoding.DecodeString(rec.Extra[keyConfig])
	if err == nil {
		err = proto.Unmarshal(b, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("container %s: unreadable config: %w", rec.ID, err)
	}
	return cfg, nil
}

func podIPs(rec engine.SandboxRecord) []string {
	if rec.Extra[keyIPs] == "" {
		return nil
	}
	return strings.Split(rec.Extra[keyIPs], ",")
}

// matchLabels reports whether labels has every pair of selector.
func matchLabels(labels, selector map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// sandboxName is the unique name of a pod sandbox, as kubelet's other
// runtimes build it.
func sandboxName(md *runtimeapi.PodSandboxMetadata) string {
	return fmt.Sprintf("%s_%s_%s_%d", md.GetName(), md.GetNamespace(), md.GetUid(), md.GetAttempt())
}

// containerName is the engine (docker) name of a CRI container: unique per
// pod, name and attempt, and readable in `docker ps`.
func containerName(md *runtimeapi.ContainerMetadata, pod *runtimeapi.PodSandboxMetadata) string {
	return sanitizeName(fmt.Sprintf("k8s_%s_%s_%s_%s_%d", md.GetName(), pod.GetName(), pod.GetNamespace(), pod.GetUid(), md.GetAttempt()))
}

// sanitizeName keeps the characters docker allows in names.
func sanitizeName(n string) string {
	b := []byte(n)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			b[i] = '-'
		}
	}
	return string(b)
}
