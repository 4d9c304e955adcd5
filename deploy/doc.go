// Package deploy holds how ordo is deployed: the Docker image
// (Dockerfile, build-image.sh), the three-node compose cluster
// (docker-compose.yml, with configs/node{1,2,3}_docker.yml) and the local
// cluster script. It has no code; its test brings the compose cluster up
// and puts it through the guide's demo (compose_test.go).
package deploy
