#!/bin/sh
# PID 1 of a nodes-tier guest: a Kubernetes node with containerd and kubelet, no systemd.
# Settings come from /etc/node/env (written per guest by the harness): NODE, INDEX, API_HOST, API_PORT,
# LABELS, TAINTS (kubelet's --register-with-taints; may be empty).
# Events go to the console (ttyS0) as `@@NODE {"ev":...}`; kubelet's and every pod's log go to the
# second serial port (ttyS1), which the harness keeps in a file beside the console.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
. /etc/node/env
up() { cut -d' ' -f1 /proc/uptime; }
ev() { echo "@@NODE {\"ev\":\"$1\",\"up\":$(up)${2:+,$2}}"; }
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 shm /dev/shm
mount -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/udev # no udev here; the agent's pod mounts the directory (empty is what it finds)
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
# mounts a CSI node plugin makes under /var/lib/kubelet must reach the kubelet and other pods
mount --make-rshared /
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control; done
IP=192.168.100.$((10 + INDEX))
hostname "$NODE"; echo "$NODE" > /etc/hostname
printf '127.0.0.1 localhost\n%s %s\n' "$IP" "$NODE" > /etc/hosts
tr -d - < /proc/sys/kernel/random/uuid > /etc/machine-id
ev booted "\"node\":\"$NODE\",\"mem_kb\":$(awk '/MemTotal/{print $2}' /proc/meminfo)"
# loop: kubelet holds every raw block volume it maps to a pod with a loop device (losetup -f);
# without the module a Block claim's pod stays ContainerCreating ("makeLoopDevice failed")
for m in configfs overlay bridge veth br_netfilter virtio_net iptable_nat iptable_filter xt_MASQUERADE xt_nat \
  xt_comment xt_addrtype nf_nat md_mod raid1 nvme_tcp nvmet nvmet_tcp xfs loop; do
  modprobe "$m" || ev modprobe-failed "\"module\":\"$m\""
done
mount -t configfs configfs /sys/kernel/config
# qemu 7.2's emulated NVMe drive, under TCG, now and then never completes a command (seen as "I/O
# tag N ... timeout, aborting" and, one io_timeout later, "reset controller"). At the default 30 s
# that stall is a minute, as long as the agent's command timeouts. The local drives get 10 s
# instead (the lost command is retried after the reset); NVMe/TCP controllers keep the default.
shorten_qemu_nvme_timeouts() {
  waited=0
  for c in /sys/class/nvme/nvme*; do
    [ "$(cat "$c/transport" 2>/dev/null)" = pcie ] || continue
    while ! ls -d "$c"/nvme*n* > /dev/null 2>&1 && [ $waited -lt 100 ]; do usleep 100000; waited=$((waited + 1)); done
    for ns in "$c"/nvme*n*; do
      [ -w "$ns/queue/io_timeout" ] && echo 10000 > "$ns/queue/io_timeout" && echo "io_timeout 10000 ms on $(basename "$ns")"
    done
  done
}
shorten_qemu_nvme_timeouts
sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
ip link set lo up
ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2
ip link set eth1 up && ip addr add "$IP/24" dev eth1
# No kube-proxy runs here: the only Service the nodes need is `kubernetes` (ClusterIP 10.0.0.1),
# which pods use to reach the apiserver; it is the host's loopback apiserver, reached at the host's
# bridge address (API_HOST), which the harness forwards to loopback. Through slirp (10.0.2.2) a
# busy guest's lease renewals stalled for tens of seconds and its agent fenced its arrays.
# Host-network processes (the agent) pick their source address before the DNAT: route the Service
# address out of eth1 so that it is this node's bridge address, which the host can answer.
ip route add 10.0.0.1/32 dev eth1 src "$IP"
iptables -t nat -A OUTPUT -d 10.0.0.1/32 -p tcp --dport 443 -j DNAT --to-destination "$API_HOST:$API_PORT"
iptables -t nat -A PREROUTING -d 10.0.0.1/32 -p tcp --dport 443 -j DNAT --to-destination "$API_HOST:$API_PORT"
ev net "\"ip\":\"$IP\""
mkdir -p /etc/cni/net.d
cat > /etc/cni/net.d/10-node.conflist <<CNI
{"cniVersion":"0.4.0","name":"node","plugins":[{"type":"bridge","bridge":"cni0","isGateway":true,"ipMasq":true,
 "ipam":{"type":"host-local","ranges":[[{"subnet":"10.244.$INDEX.0/24"}]],"routes":[{"dst":"0.0.0.0/0"}]}},
 {"type":"portmap","capabilities":{"portMappings":true}}]}
CNI
# logs to ttyS1: kubelet's, containerd's and each pod container's, prefixed with their source
follow() { tail -n +1 -F "$1" 2> /dev/null | awk -v p="$2" '{ print p, $0; fflush() }' > /dev/ttyS1 & }
: > /var/log/kubelet.log; : > /var/log/containerd.log
follow /var/log/kubelet.log kubelet:
follow /var/log/containerd.log containerd:
# the kernel's messages of every level (the console shows errors only): what nvme, nvmet and md
# did under a stage, a relocation or an export that went away
# (/dev/kmsg: "level,seq,microseconds since boot,-;text", from boot on, then as they come)
awk '{ print "kernel:", $0; fflush() }' < /dev/kmsg > /dev/ttyS1 &
(
  seen=' '
  while :; do
    for f in /var/log/pods/*/*/*.log; do
      [ -f "$f" ] || continue
      case "$seen" in *" $f "*) continue ;; esac
      seen="$seen$f "
      p=${f#/var/log/pods/}; follow "$f" "pod:${p%%_*}/$(echo "$p" | cut -d_ -f2)/$(basename "$(dirname "$f")"):"
    done
    sleep 3
  done
) &
containerd --config /etc/containerd/config.toml > /var/log/containerd.log 2>&1 &
until ctr version > /dev/null 2>&1; do usleep 100000; done
ev containerd-ready "\"images\":\"$(ctr -n k8s.io images ls -q | grep -v sha256: | tr '\n' ' ')\""
cat > /etc/node/kubelet.yaml <<KCFG
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
failSwapOn: false
resolvConf: /etc/resolv.conf
authentication: {anonymous: {enabled: false}, webhook: {enabled: false}, x509: {clientCAFile: /etc/node/ca.crt}}
authorization: {mode: AlwaysAllow}
evictionHard: {memory.available: "50Mi", nodefs.available: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
nodeStatusUpdateFrequency: 5s
KCFG
cat > /etc/node/kubeconfig <<KC
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {server: "https://$API_HOST:$API_PORT", certificate-authority: /etc/node/ca.crt}
users:
- name: node
  user: {client-certificate: /etc/node/node.crt, client-key: /etc/node/node.key}
contexts:
- name: test
  context: {cluster: test, user: node}
current-context: test
KC
kubelet --config=/etc/node/kubelet.yaml --kubeconfig=/etc/node/kubeconfig --hostname-override="$NODE" \
  --node-ip="$IP" --node-labels="$LABELS" ${TAINTS:+--register-with-taints="$TAINTS"} --v=1 > /var/log/kubelet.log 2>&1 &
ev kubelet-spawned
until wget -q -O /dev/null http://127.0.0.1:10248/healthz 2> /dev/null; do usleep 200000; done
ev kubelet-healthy
# Where the guest's one vCPU goes: per command, the CPU ticks (USER_HZ, 100 a second) of every
# process alive at both ends of the minute, summed by name, the six largest as % of the vCPU.
# (The tier is CPU-bound on the host: this says what to make cheaper.)
cpu_ticks() {
  cat /proc/[0-9]*/stat 2> /dev/null | awk '{
    c = substr($0, index($0, "(") + 1); c = substr(c, 1, index(c, ")") - 1); gsub(/[^A-Za-z0-9_.-]/, "_", c)
    n = split(substr($0, index($0, ")") + 2), f, " "); print $1, c, f[12] + f[13] }'
}
cpu_ticks > /tmp/cpu.prev
while :; do
  sleep 60
  cpu_ticks > /tmp/cpu.now
  top=$(awk 'NR == FNR { prev[$1] = $3; next } ($1 in prev) { use[$2] += $3 - prev[$1] }
    END { for (c in use) if (use[c] > 0) printf "%d %s\n", use[c], c }' /tmp/cpu.prev /tmp/cpu.now |
    sort -rn | head -6 | awk '{ printf "%s%s:%.0f", (NR > 1 ? " " : ""), $2, $1 / 60 }')
  mv /tmp/cpu.now /tmp/cpu.prev
  # tasks in uninterruptible sleep right now (I/O that does not complete: a stalled array or path)
  blocked=$(awk '{ c = substr($0, index($0, "(") + 1); s = substr(c, index(c, ") ") + 2)
    if (substr(s, 1, 1) == "D") print substr(c, 1, index(c, ") ") - 1) }' \
    /proc/[0-9]*/stat 2> /dev/null | sort | uniq -c | awk '{ printf "%s%s:%d", (NR > 1 ? " " : ""), $2, $1 }')
  ev mem "\"avail_kb\":$(awk '/MemAvailable/{print $2}' /proc/meminfo),\"pod_logs\":$(find /var/log/pods -name '*.log' 2> /dev/null | wc -l),\"pod_log_kb\":$(du -sk /var/log/pods 2> /dev/null | cut -f1),\"cpu_pct\":\"$top\",\"blocked\":\"$blocked\""
done
