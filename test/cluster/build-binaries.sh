#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-scheduler and kube-controller-manager of one Kubernetes release
# from their Go modules (through the Go module proxy), into $OUT/bin. Called by test/cluster/setup.ts
# (`npm run setup:cluster`); safe to re-run: a binary whose stamp matches its version is kept.
#
# k8s.io/kubernetes cannot be `go install`ed: its go.mod replaces each staging module k8s.io/X by
# ./staging/src/k8s.io/X. So we build it from a throw-away main module that requires it and
# replaces every staging module by its published tag v0.<minor>.<patch>; the staging list is read
# from the release's own go.mod. etcd's server module has ../ replaces too, so it gets a wrapper
# module as well; its version is the one k8s.io/kubernetes pins.
#
# Usage: K8S_VERSION=v1.36.3 OUT=~/.cache/k8s-test-bins/v1.36.3 build-binaries.sh
#   K8S_COMMANDS  which k8s.io/kubernetes commands (default: the control plane and etcd); the nodes
#                 tier asks for "kubelet kubectl e2e.test agnhost" (e2e.test is `go test -c` of
#                 test/e2e; agnhost is test/images/agnhost, the e2e suite's test image binary);
#                 bench:extender asks for "extender-client": bench/extender-client-go, a main package
#                 of this repository built against the release's own pkg/scheduler (stamped with the
#                 version and its source's hash).
#   WITH_ETCD     0 to skip etcd (default 1 unless K8S_COMMANDS is set)
set -euo pipefail
: "${K8S_VERSION:?set K8S_VERSION, e.g. v1.36.3}"
: "${OUT:?set OUT, the cache directory for this version}"
BIN="$OUT/bin"
WORK="$OUT/work"
TIMES="$OUT/build-times.log"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}" # never download another Go toolchain behind the user's back
export CGO_ENABLED=0                        # static binaries, as Kubernetes ships them
mkdir -p "$BIN" "$WORK/dl"

say() { echo "[build-binaries] $*" >&2; }
fail() { say "ERROR: $*"; exit 1; }
command -v go >/dev/null || fail "no Go toolchain on PATH"
current() { [[ -x "$BIN/$1" && -f "$BIN/.$1.version" && "$(cat "$BIN/.$1.version")" == "$2" ]]; }
stamp() { echo "$2" > "$BIN/.$1.version"; }

# Path of the go.mod of module@version in the module cache (downloads it through GOPROXY).
gomod_of() {
  (cd "$WORK/dl" && go mod download -json "$1@$2") |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p' | head -1
}

kmod=$(gomod_of k8s.io/kubernetes "$K8S_VERSION")
[[ -f "$kmod" ]] || fail "could not download the go.mod of k8s.io/kubernetes@$K8S_VERSION"
say "$(go version); k8s.io/kubernetes@$K8S_VERSION"
echo "# build $(date -u +%FT%TZ) $K8S_VERSION nproc=$(nproc) $(go version)" >> "$TIMES"

build_kubernetes() {
  local want=() c
  local client_src client_ver
  client_src="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/bench/extender-client-go"
  client_ver="$K8S_VERSION-$(cat "$client_src"/*.go | sha256sum | cut -c1-12)"
  for c in ${K8S_COMMANDS:-kube-apiserver kube-scheduler kube-controller-manager}; do
    if [[ $c == extender-client ]]; then current "$c" "$client_ver" || want+=("$c"); continue; fi
    current "$c" "$K8S_VERSION" || want+=("$c")
  done
  if ((${#want[@]} == 0)); then say "kubernetes binaries are current"; return; fi
  local staging_ver="v0.${K8S_VERSION#v1.}" minor=${K8S_VERSION#v1.}
  minor=${minor%%.*}
  # Staging modules: `k8s.io/X => ./staging/src/k8s.io/X` lines of the release's go.mod.
  local staging
  staging=$(sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\1#p' "$kmod" | sort -u)
  [[ -n "$staging" ]] || fail "found no staging replace lines in $kmod"
  local go_line godebug
  go_line=$(awk '$1 == "go" { print $2; exit }' "$kmod")
  # GODEBUG defaults come from the main module, so copy the release's godebug lines.
  godebug=$(awk '/^godebug[ \t]*\(/ {b=1; next} b && /^\)/ {b=0; next} b {print "godebug " $1; next}
                 /^godebug[ \t]+[^(]/ {print}' "$kmod")
  local dir="$WORK/kubernetes-$K8S_VERSION"
  mkdir -p "$dir"
  {
    printf 'module meshstor.local/k8s-test-bins\n\ngo %s\n\n%s\n\nreplace (\n' "$go_line" "$godebug"
    while read -r m; do printf '\t%s => %s %s\n' "$m" "$m" "$staging_ver"; done <<<"$staging"
    printf ')\n'
  } > "$dir/go.mod"
  : > "$dir/go.sum"
  local pkgs=() gets=() ld="-s -w" k v
  local test_bins=()
  for c in "${want[@]}"; do
    if [[ $c == e2e.test ]]; then test_bins+=("$c"); gets+=("k8s.io/kubernetes/test/e2e@$K8S_VERSION"); continue; fi
    # agnhost: the e2e suite's Swiss-army test image binary, a main package of the same module
    if [[ $c == agnhost ]]; then pkgs+=("k8s.io/kubernetes/test/images/agnhost"); gets+=("k8s.io/kubernetes/test/images/agnhost@$K8S_VERSION"); continue; fi
    # the bench's client: a package of the wrapper module itself, copied in from the repository
    if [[ $c == extender-client ]]; then
      rm -rf "$dir/extender-client" && mkdir -p "$dir/extender-client" && cp "$client_src"/*.go "$dir/extender-client/"
      pkgs+=("./extender-client"); gets+=("k8s.io/kubernetes/pkg/scheduler@$K8S_VERSION"); continue
    fi
    pkgs+=("k8s.io/kubernetes/cmd/$c"); gets+=("k8s.io/kubernetes/cmd/$c@$K8S_VERSION")
  done
  for k in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    for v in "gitVersion=$K8S_VERSION" gitMajor=1 "gitMinor=$minor" gitTreeState=clean; do ld+=" -X $k.$v"; done
  done
  say "building ${want[*]} ($(wc -l <<<"$staging") staging modules -> $staging_ver)"
  (cd "$dir" && go get "${gets[@]}")
  if ((${#pkgs[@]} > 0)); then (cd "$dir" && go build -mod=mod -trimpath -ldflags "$ld" -o "$BIN/" "${pkgs[@]}"); fi
  # e2e.test: the e2e suite compiled as a test binary, as Kubernetes' release tarballs ship it
  if ((${#test_bins[@]} > 0)); then
    (cd "$dir" && go test -c -mod=mod -trimpath -ldflags "$ld" -o "$BIN/e2e.test" k8s.io/kubernetes/test/e2e)
  fi
  for c in "${want[@]}"; do
    if [[ $c == extender-client ]]; then stamp "$c" "$client_ver"; else stamp "$c" "$K8S_VERSION"; fi
  done
}

build_etcd() {
  local ver
  ver=$(awk '$1 == "go.etcd.io/etcd/server/v3" && $2 ~ /^v/ { print $2; exit }' "$kmod")
  [[ -n "$ver" ]] || fail "k8s.io/kubernetes@$K8S_VERSION does not name an etcd server version"
  if current etcd "go-$ver"; then say "etcd $ver is current"; return; fi
  local dir="$WORK/etcd-$ver"
  mkdir -p "$dir"
  printf 'module meshstor.local/etcd\n\ngo 1.24\n' > "$dir/go.mod"
  : > "$dir/go.sum"
  say "building etcd $ver"
  (cd "$dir" && go get "go.etcd.io/etcd/server/v3@$ver" &&
    go build -mod=mod -trimpath -ldflags "-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3)
  stamp etcd "go-$ver"
}

timed() {
  local t0=$SECONDS
  "$@"
  echo "$(date -u +%FT%TZ) $1 $((SECONDS - t0))s" >> "$TIMES"
  say "$1 took $((SECONDS - t0))s"
}
timed build_kubernetes
if [[ ${WITH_ETCD:-$([[ -n ${K8S_COMMANDS:-} ]] && echo 0 || echo 1)} == 1 ]]; then
  timed build_etcd
  "$BIN/kube-apiserver" --version >&2
fi
