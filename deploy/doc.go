// Package deploy holds how ordo is deployed: the Docker image
// (Dockerfile, build-image.sh), the three-node compose cluster
// (docker-compose.yml, with configs/node{1,2,3}_docker.yml) and the local
// cluster script, the systemd unit (systemd/) and the Kubernetes manifests
// (kubernetes/). It has no code; its tests bring the compose cluster up
// and put it through the guide's demo (compose_test.go), and check the
// unit (systemd_test.go) and the manifests (kubernetes_test.go).
package deploy
