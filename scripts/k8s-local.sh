#!/usr/bin/env bash
# A real, local Kubernetes control plane for the kubernetes backend's tests, built offline from
# Debian's `kubernetes` source package (no registry ships runnable control-plane binaries and
# container registries are unreachable, so kind and k3s cannot be used here).
#
#   scripts/k8s-local.sh build   fetch the source, build the binaries into the cache (idempotent)
#   scripts/k8s-local.sh start   build if needed, start etcd, apiserver, controller-manager,
#                                scheduler, a private dockerd and a kubelet; prints the kubeconfig path
#   scripts/k8s-local.sh stop    stop everything started by `start` (by pid file), keep the cache
#   scripts/k8s-local.sh env     print `export KUBECONFIG=...` for a running control plane
#   scripts/k8s-local.sh status  say whether the API server answers
#
# Everything lives under REGSANDBOX_K8S_HOME (default ~/.cache/regsandbox/k8s), outside the clone:
#   bin/      the built binaries (about 270 MB), reused across runs and clones
#   run/      state of the running control plane: pids, logs, certificates, kubeconfig, etcd data
# Ports (loopback only) come from REGSANDBOX_K8S_PORT_BASE (default 16443): apiserver on the base,
# etcd client/peer on base+1/base+2, kubelet on base+3, kubelet healthz on base+4.
#
# The kubelet runs its pods through its OWN dockerd (own socket, data-root, exec-root, pid file
# and --bridge=none) so the project's Docker engine, its images and its docker0 bridge are never
# touched. Images the tests need are copied into it with `docker save | docker load`
# (REGSANDBOX_K8S_IMAGES, default regsandbox/base:bookworm).
set -euo pipefail

K8S_HOME=${REGSANDBOX_K8S_HOME:-$HOME/.cache/regsandbox/k8s}
BIN=$K8S_HOME/bin
SRC=$K8S_HOME/src
RUN=${REGSANDBOX_K8S_RUN:-$K8S_HOME/run}
PORT_BASE=${REGSANDBOX_K8S_PORT_BASE:-16443}
API_PORT=$PORT_BASE
ETCD_PORT=$((PORT_BASE + 1))
ETCD_PEER_PORT=$((PORT_BASE + 2))
KUBELET_PORT=$((PORT_BASE + 3))
KUBELET_HEALTHZ_PORT=$((PORT_BASE + 4))
# A kubelet destroys the pod cgroups under its root that it does not know, killing their processes:
# two control planes on one machine (another worktree's tests) must never share a cgroup root.
CGROUP_ROOT=/regsandbox-k8s-$PORT_BASE
IMAGES=${REGSANDBOX_K8S_IMAGES:-regsandbox/base:bookworm}
K8S_VERSION=v1.20.2
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet)

log() { echo "k8s-local: $*" >&2; }
die() { log "$*"; exit 1; }

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || die "missing Debian packages: ${missing[*]} (install them as root)"
  log "installing ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
}

# The upstream tree with vendor/, from Debian's source package (needs a deb-src line).
fetch_source() {
  [ -d "$SRC/tree/vendor" ] && return 0
  apt_install dpkg-dev golang-go
  local list=/etc/apt/sources.list.d/regsandbox-deb-src.sources
  if ! grep -rqs "^Types: deb-src" /etc/apt/sources.list.d/ && ! grep -qs "^deb-src" /etc/apt/sources.list; then
    [ "$(id -u)" = 0 ] || die "no deb-src line for bookworm; add one (see docs/kubernetes.md)"
    printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' >"$list"
    apt-get -o DPkg::Lock::Timeout=600 update -qq
  fi
  mkdir -p "$SRC"
  (cd "$SRC" && apt-get source --download-only kubernetes >/dev/null 2>&1) || die "apt-get source kubernetes failed"
  rm -rf "$SRC/tree.tmp"
  (cd "$SRC" && dpkg-source --no-check -x kubernetes_*.dsc tree.tmp >/dev/null)
  mv "$SRC/tree.tmp" "$SRC/tree"
}

# GOPATH mode: module mode refuses the tree (-mod=vendor), GOPATH mode builds it once the one
# generated file that is not checked in (the OpenAPI definitions) exists.
go_env() {
  export GOPATH=$SRC/gopath GO111MODULE=off CGO_ENABLED=0 GOCACHE=$K8S_HOME/gocache GOFLAGS=
  mkdir -p "$GOPATH/src/k8s.io"
  [ -L "$GOPATH/src/k8s.io/kubernetes" ] || ln -s "$SRC/tree" "$GOPATH/src/k8s.io/kubernetes"
  cd "$GOPATH/src/k8s.io/kubernetes"
}

generate_openapi() {
  local out=pkg/generated/openapi/zz_generated.openapi.go
  [ -s "$out" ] && return 0
  log "generating the OpenAPI definitions (vendored openapi-gen)"
  go build -o "$K8S_HOME/tools/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen
  local dirs
  dirs=$(grep -rlR --include='*.go' '^// *+k8s:openapi-gen=' pkg vendor \
    | grep -v -e vendor/k8s.io/code-generator/ -e vendor/k8s.io/sample-apiserver/ \
    | xargs -n1 dirname | LC_ALL=C sort -u | sed 's|^|k8s.io/kubernetes/|' | paste -sd, -)
  "$K8S_HOME/tools/openapi-gen" --logtostderr -i "$dirs" -p k8s.io/kubernetes/pkg/generated/openapi \
    -O zz_generated.openapi -h vendor/k8s.io/code-generator/hack/boilerplate.go.txt \
    -r "$K8S_HOME/tools/openapi-violations.report" >/dev/null 2>&1
  [ -s "$out" ] || die "openapi-gen wrote no $out"
}

# The vendored modern-go/reflect2 1.0.1 crashes the API server under Go >= 1.18 ("fatal error:
# fault" in mapiterinit while encoding JSON); Debian's 1.0.2 is the upstream fix.
patch_reflect2() {
  local vendored=vendor/github.com/modern-go/reflect2
  [ -f "$vendored/go_above_118.go" ] && return 0
  apt_install golang-github-modern-go-reflect2-dev
  log "replacing the vendored reflect2 1.0.1 with Debian's 1.0.2"
  rm -rf "$vendored" && cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 "$vendored"
  rm -f "$K8S_HOME/bin/"kube* "$K8S_HOME/bin/kubelet"
}

# Pods here have no network at all (the node's engine runs with --bridge=none and there is no
# network plugin), so their sandbox has no IP; upstream's kubelet then recreates the sandbox on
# every sync (the pause container exits 137, init containers run again). Keep it instead.
patch_ipless_sandbox() {
  local file=pkg/kubelet/kuberuntime/kuberuntime_manager.go
  grep -q 'regsandbox: keep' "$file" && return 0
  log "patching the kubelet to keep pod sandboxes without an IP"
  sed -i 's|if !kubecontainer.IsHostNetworkPod(pod) \&\& sandboxStatus.Network.Ip == "" {|if false \&\& sandboxStatus.Network.Ip == "" { // regsandbox: keep IP-less sandboxes|' "$file"
  grep -q 'regsandbox: keep' "$file" || die "could not patch $file"
  rm -f "$K8S_HOME/bin/kubelet"
}

build() {
  local todo=()
  for b in "${BINARIES[@]}"; do [ -x "$BIN/$b" ] || todo+=("$b"); done
  apt_install etcd-server
  [ ${#todo[@]} -eq 0 ] && [ -f "$SRC/tree/vendor/github.com/modern-go/reflect2/go_above_118.go" ] &&
    grep -q 'regsandbox: keep' "$SRC/tree/pkg/kubelet/kuberuntime/kuberuntime_manager.go" &&
    { log "binaries cached in $BIN"; return 0; }
  fetch_source
  apt_install golang-go
  (
    go_env
    patch_reflect2
    patch_ipless_sandbox
    generate_openapi
    # Stamp the version the way the upstream build does, so clients (helm's kubeVersion checks,
    # kubectl version) see 1.20.2 instead of v0.0.0-master.
    local v=k8s.io/kubernetes/vendor/k8s.io/component-base/version
    local ldflags="-s -w -X $v.gitVersion=$K8S_VERSION -X $v.gitMajor=1 -X $v.gitMinor=20 -X $v.gitTreeState=clean"
    ldflags+=" -X $v.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    mkdir -p "$BIN"
    todo=()
    for b in "${BINARIES[@]}"; do [ -x "$BIN/$b" ] || todo+=("$b"); done
    for b in "${todo[@]}"; do
      local started=$SECONDS
      log "building $b"
      go build -ldflags "$ldflags" -o "$BIN/$b.tmp" "./cmd/$b"
      mv "$BIN/$b.tmp" "$BIN/$b"
      log "built $b in $((SECONDS - started)) s"
    done
  )
}

# -- running the control plane -----------------------------------------------------------------

pid_alive() { [ -s "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

launch() {  # name, command...: started in its own session so `stop` can end its whole group
  local name=$1; shift
  pid_alive "$name" && return 0
  setsid "$@" >"$RUN/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

wait_for() {  # what, seconds, command...
  local what=$1 limit=$2; shift 2
  local until=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $until ] || die "$what did not come up in ${limit} s (logs: $RUN/logs/)"
    sleep 0.5
  done
}

certificates() {
  local pki=$RUN/pki
  [ -s "$pki/admin.token" ] && return 0
  mkdir -p "$pki" && chmod 700 "$pki"
  (
    cd "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
      -subj "/CN=regsandbox-local-ca" >/dev/null 2>&1
    cert() {  # name, subject, [extensions file]
      openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" >/dev/null 2>&1
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days 3650 \
        ${3:+-extfile "$3"} >/dev/null 2>&1
    }
    printf 'subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\n' >apiserver.ext
    cert apiserver "/CN=kube-apiserver" apiserver.ext
    # The API server's identity towards the kubelet (logs, exec, port-forward).
    cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
    openssl genrsa -out sa.key 2048 >/dev/null 2>&1
    openssl rsa -in sa.key -pubout -out sa.pub >/dev/null 2>&1
    # Token authentication: one identity per component, so RBAC and the Node authorizer apply.
    for who in admin controller-manager scheduler kubelet; do
      head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$who.token"
    done
    {
      echo "$(cat admin.token),regsandbox-admin,regsandbox-admin,system:masters"
      echo "$(cat controller-manager.token),system:kube-controller-manager,system:kube-controller-manager"
      echo "$(cat scheduler.token),system:kube-scheduler,system:kube-scheduler"
      echo "$(cat kubelet.token),system:node:localhost,system:node:localhost,system:nodes"
    } >tokens.csv
  )
}

kubeconfig() {  # who -> file
  cat >"$RUN/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: regsandbox-local
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority: $RUN/pki/ca.crt
users:
- name: $1
  user:
    token: $(cat "$RUN/pki/$1.token")
contexts:
- name: regsandbox-local
  context: {cluster: regsandbox-local, user: $1}
current-context: regsandbox-local
EOF
  chmod 600 "$RUN/$1.kubeconfig"
}

# The kubelet's own Docker engine. The runc wrapper clamps a negative oom_score_adj to 0: some
# VMs refuse negative values, and runc then fails with "can't get final child's PID from pipe".
node_engine() {
  cat >"$RUN/runc-clamp-oom" <<'EOF'
#!/bin/sh
prev=
for arg in "$@"; do
  case "$prev" in --bundle|-b) bundle=$arg ;; esac
  prev=$arg
done
if [ -n "${bundle:-}" ] && [ -f "$bundle/config.json" ]; then
  sed -i 's/"oomScoreAdj":-[0-9]*/"oomScoreAdj":0/' "$bundle/config.json"
fi
exec runc "$@"
EOF
  chmod +x "$RUN/runc-clamp-oom"
  mkdir -p "$K8S_HOME/docker-$PORT_BASE" "$RUN/docker-exec"
  launch dockerd dockerd --host "unix://$RUN/docker.sock" --data-root "$K8S_HOME/docker-$PORT_BASE" \
    --exec-root "$RUN/docker-exec" --pidfile "$RUN/docker-exec/dockerd.pid" --bridge=none \
    --iptables=false --ip-masq=false --ip-forward=false --userland-proxy=false \
    --add-runtime "clamp-oom=$RUN/runc-clamp-oom" --default-runtime=clamp-oom \
    --exec-opt native.cgroupdriver=cgroupfs --oom-score-adjust=0 --log-level=warn
  wait_for "the node's Docker engine" 60 docker -H "unix://$RUN/docker.sock" info
  local node=(docker -H "unix://$RUN/docker.sock")
  for image in $IMAGES; do
    if ! "${node[@]}" image inspect "$image" >/dev/null 2>&1; then
      log "loading $image into the node's engine"
      docker save "$image" | "${node[@]}" load >/dev/null
    fi
  done
  # The pod sandbox ("pause") container only holds the namespaces: any long sleeper will do.
  if ! "${node[@]}" image inspect regsandbox/pause:local >/dev/null 2>&1; then
    local base=${IMAGES%% *}
    printf 'FROM %s\nCMD ["sleep", "infinity"]\n' "$base" | "${node[@]}" build -q -t regsandbox/pause:local - >/dev/null
  fi
}

start() {
  build
  apt_install socat openssl curl
  mkdir -p "$RUN/logs"
  certificates
  for who in admin controller-manager scheduler kubelet; do kubeconfig "$who"; done
  local pki=$RUN/pki
  launch etcd etcd --name default --data-dir "$RUN/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "default=http://127.0.0.1:$ETCD_PEER_PORT" --quota-backend-bytes=4294967296
  wait_for etcd 30 curl -fsS "http://127.0.0.1:$ETCD_PORT/health"
  launch kube-apiserver "$BIN/kube-apiserver" --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" --insecure-port 0 \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" --token-auth-file "$pki/tokens.csv" \
    --authorization-mode Node,RBAC --anonymous-auth=false \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --service-account-issuer https://kubernetes.default.svc --service-cluster-ip-range 10.0.0.0/24 \
    --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types Hostname --allow-privileged=false \
    --max-requests-inflight 800 --max-mutating-requests-inflight 400
  wait_for kube-apiserver 120 curl -fsS --cacert "$pki/ca.crt" \
    -H "Authorization: Bearer $(cat "$pki/admin.token")" "https://127.0.0.1:$API_PORT/readyz"
  launch kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig "$RUN/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$RUN/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$RUN/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --port 0 --secure-port "$((PORT_BASE + 5))" --leader-elect=false \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    --use-service-account-credentials=true --controllers '*,-nodeipam,-cloud-node-lifecycle' \
    --kube-api-qps 100 --kube-api-burst 200 --concurrent-namespace-syncs 10
  launch kube-scheduler "$BIN/kube-scheduler" --kubeconfig "$RUN/scheduler.kubeconfig" \
    --authentication-kubeconfig "$RUN/scheduler.kubeconfig" \
    --authorization-kubeconfig "$RUN/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --port 0 --secure-port "$((PORT_BASE + 6))" --leader-elect=false
  if [ "${REGSANDBOX_K8S_KUBELET:-1}" = 1 ]; then
    node_engine
    mkdir -p "$RUN/kubelet" "$RUN/kubelet-plugins"
    for controller in /sys/fs/cgroup/*/; do mkdir -p "$controller${CGROUP_ROOT#/}" 2>/dev/null || true; done
    launch kubelet "$BIN/kubelet" --kubeconfig "$RUN/kubelet.kubeconfig" \
      --container-runtime docker --docker-endpoint "unix://$RUN/docker.sock" \
      --docker "unix://$RUN/docker.sock" --docker-root "$K8S_HOME/docker-$PORT_BASE" \
      --root-dir "$RUN/kubelet" --cert-dir "$RUN/kubelet/pki" --volume-plugin-dir "$RUN/kubelet-plugins" \
      --hostname-override localhost --address 127.0.0.1 \
      --port "$KUBELET_PORT" --healthz-port "$KUBELET_HEALTHZ_PORT" --read-only-port 0 \
      --anonymous-auth=false --client-ca-file "$pki/ca.crt" --authorization-mode Webhook \
      --cgroup-driver cgroupfs --cgroup-root "$CGROUP_ROOT" --fail-swap-on=false --pod-max-pids 256 --oom-score-adj 0 \
      --pod-infra-container-image regsandbox/pause:local --image-gc-high-threshold 100 \
      --image-gc-low-threshold 99 --eviction-hard 'memory.available<100Mi,nodefs.available<1%,imagefs.available<1%' \
      --enforce-node-allocatable '' --max-pods 250 --serialize-image-pulls=false
    wait_for "the node to be Ready" 120 node_ready
  fi
  log "control plane up: https://127.0.0.1:$API_PORT"
  echo "$RUN/admin.kubeconfig"
}

node_ready() {
  curl -fsS --cacert "$RUN/pki/ca.crt" -H "Authorization: Bearer $(cat "$RUN/pki/admin.token")" \
    "https://127.0.0.1:$API_PORT/api/v1/nodes/localhost" | python3 -c '
import json, sys
node = json.load(sys.stdin)
ready = any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions", []))
# The node controller lifts the not-ready taint a moment after; before that nothing schedules.
sys.exit(0 if ready and not node["spec"].get("taints") else 1)'
}

stop_one() {
  local name=$1
  [ -s "$RUN/$name.pid" ] || return 0
  local pid; pid=$(cat "$RUN/$name.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$RUN/$name.pid"
}

stop() {
  # The kubelet first, then its pods' containers (its engine keeps them otherwise), then the rest.
  stop_one kubelet
  if pid_alive dockerd; then
    local node=(docker -H "unix://$RUN/docker.sock")
    # shellcheck disable=SC2046
    "${node[@]}" rm -f $("${node[@]}" ps -aq) >/dev/null 2>&1 || true
  fi
  for name in dockerd kube-scheduler kube-controller-manager kube-apiserver etcd; do stop_one "$name"; done
  find /sys/fs/cgroup/*/"${CGROUP_ROOT#/}" -depth -type d -exec rmdir {} + 2>/dev/null || true
  # Pod volume mounts (tmpfs secrets, emptyDirs) left by the kubelet under its root dir.
  if [ -d "$RUN/kubelet" ]; then
    grep -o " $RUN/kubelet[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  fi
  # A fresh cluster next time (etcd data, certificates); the binaries and loaded images stay.
  rm -rf "$RUN"
  log "stopped"
}

status() {
  [ -s "$RUN/pki/admin.token" ] || { echo "not running"; return 1; }
  curl -fsS --cacert "$RUN/pki/ca.crt" -H "Authorization: Bearer $(cat "$RUN/pki/admin.token")" \
    "https://127.0.0.1:$API_PORT/readyz" >/dev/null 2>&1 && echo "running: $RUN/admin.kubeconfig" ||
    { echo "not answering"; return 1; }
}

case "${1:-}" in
  build) build ;;
  start) start ;;
  stop) stop ;;
  env)
    [ -s "$RUN/admin.kubeconfig" ] || die "not running (scripts/k8s-local.sh start)"
    echo "export KUBECONFIG=$RUN/admin.kubeconfig"
    # Where the kubernetes backend loads template images for this node (no registry here).
    if [ -S "$RUN/docker.sock" ]; then echo "export REGSANDBOX_KUBE_NODE_DOCKER_HOST=unix://$RUN/docker.sock"; fi
    ;;
  status) status ;;
  *) echo "usage: $0 build|start|stop|env|status" >&2; exit 2 ;;
esac
