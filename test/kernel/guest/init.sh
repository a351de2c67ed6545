#!/bin/busybox sh
# /init of the kernel-tier VM: mount the basics, load the data-path modules, give loopback the
# addresses the "nodes" listen on, run the suite named on the kernel command line with Node 24,
# report its exit status and power off. Output goes to the serial console (read by harness.ts).
/bin/busybox --install -s /bin
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mkdir -p /run/mdadm /run/lock/lvm /run/lvm /root /mnt
echo "@@MS {\"kind\":\"booted\",\"uptime\":$(cut -d' ' -f1 /proc/uptime),\"kernel\":\"$(uname -r)\"}"
for m in configfs nvme md_mod raid1 nvmet nvmet_tcp nvme_tcp nvme_fabrics xfs dm_thin_pool; do modprobe $m; done
mount -t configfs configfs /sys/kernel/config 2>/dev/null
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
ip link set lo up
for a in 127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5; do ip addr add $a/8 dev lo 2>/dev/null; done
# a guest booted with a NIC (BootOptions.network): qemu's user network, the host's loopback at 10.0.2.2
if [ -f /etc/meshstor/net-modules ]; then
  for m in $(cat /etc/meshstor/net-modules); do insmod "$m"; done
  nic=$(ls /sys/class/net | grep -v '^lo$' | head -n 1)
  ip link set "$nic" up
  ip addr add 10.0.2.15/24 dev "$nic"
  ip route add default via 10.0.2.2
  echo "@@MS {\"kind\":\"network\",\"nic\":\"$nic\",\"uptime\":$(cut -d' ' -f1 /proc/uptime)}"
fi
echo 2000000 > /proc/sys/dev/raid/speed_limit_min
echo 2000000 > /proc/sys/dev/raid/speed_limit_max
suite=$(sed -n 's/.*meshstor\.suite=\([^ ]*\).*/\1/p' /proc/cmdline)
cd /project
rc=0
node test/kernel/guest/main.ts "$suite" || rc=$?
echo "@@MS {\"kind\":\"exit\",\"code\":$rc,\"uptime\":$(cut -d' ' -f1 /proc/uptime)}"
sync
poweroff -f
