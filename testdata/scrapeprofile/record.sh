#!/usr/bin/env bash
# Re-records the k3s-shaped scrape in this folder (see README.md). Needs the
# test environment's binaries (.ci/testenv) and the e2e k3s stand-in
# (e2e/k3s/build) built once; starts its own testenv instance and a
# kube-scheduler on 127.0.0.1 and stops both by PID.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/scrapeprofile.XXXXXX")
export HOMELAB_TESTENV_PORT_BASE=${HOMELAB_TESTENV_PORT_BASE:-25300} HOMELAB_TESTENV_DIR=$work/testenv
testenv=$repo/.ci/testenv/testenv
sched_pid=
cleanup() {
	[[ -n $sched_pid ]] && kill "$sched_pid" 2>/dev/null || true
	bash "$testenv" down >/dev/null 2>&1 || true
}
trap cleanup EXIT

bash "$testenv" up
eval "$(bash "$testenv" env)"
kubectl() { "$HOMELAB_TEST_KUBECTL" --kubeconfig "$HOMELAB_TEST_KUBECONFIG" "$@"; }

# The upstream kube-scheduler, from the k3s stand-in's multi-call binary.
eval "$(bash "$repo/e2e/k3s/build" 2>/dev/null)" # K3S_BINARY
sched_port=$((HOMELAB_TESTENV_PORT_BASE + 59))
kc=$HOMELAB_TEST_KUBECONFIG
K3S_STANDIN_COMPONENT=kube-scheduler "$K3S_BINARY" kube-scheduler --kubeconfig="$kc" \
	--authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" --bind-address=127.0.0.1 \
	--secure-port="$sched_port" --cert-dir="$work/sched-certs" --leader-elect=false >"$work/sched.log" 2>&1 &
sched_pid=$!
for _ in $(seq 60); do
	curl -sk "https://127.0.0.1:$sched_port/healthz" | grep -qx ok && break
	sleep 1
done
curl -sk "https://127.0.0.1:$sched_port/healthz" | grep -qx ok || { echo "kube-scheduler not healthy; log: $work/sched.log" >&2; exit 1; }

# Some work for every component: a namespace, a Deployment whose Pods the
# scheduler tries (there is no node), a Service, reads and watches.
kubectl create namespace rec
kubectl -n rec create deployment web --image=nginx --replicas=2
kubectl -n rec create configmap c1 --from-literal=a=b
kubectl -n rec expose deployment web --port 80
for _ in 1 2 3; do kubectl get pods,svc,deploy,cm,secrets,nodes -A >/dev/null; kubectl get --raw /apis >/dev/null; done
kubectl -n rec scale deployment web --replicas=3
kubectl -n rec delete pod --all --wait=false
for _ in $(seq 20); do kubectl get --raw /api/v1/namespaces/rec/pods >/dev/null; kubectl -n rec get events >/dev/null; done

token=$HOMELAB_TEST_KUBE_TOKEN
rec() { # NAME PORT
	curl -skf -H "Authorization: Bearer $token" "https://127.0.0.1:$2/metrics" | grep -v '^# HELP' | gzip -9n >"$here/$1.prom.gz"
}
rec kube-apiserver $((HOMELAB_TESTENV_PORT_BASE + 43))
rec kube-controller-manager $((HOMELAB_TESTENV_PORT_BASE + 57))
rec kube-scheduler "$sched_port"

# The kubelet: its families from the upstream source (no kubelet can run
# here), built with the k3s stand-in's module (the same Kubernetes version).
mkdir -p "$work/kubeletnames"
sed 's#^module .*#module homelab.local/kubeletnames#' "$repo/e2e/k3s/go.mod" >"$work/kubeletnames/go.mod"
cp "$repo/e2e/k3s/go.sum" "$here/kubeletnames/main.go" "$work/kubeletnames/"
(cd "$work/kubeletnames" && go build -o kubeletnames . && ./kubeletnames) | gzip -9n >"$here/kubelet.prom.gz"
echo "recorded into $here"
