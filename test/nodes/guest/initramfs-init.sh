#!/bin/sh
# /init of the nodes tier's small initramfs: load virtio_blk, mount the shared root image (qemu
# opens it with snapshot=on, so every guest writes to its own throw-away overlay), copy this guest's
# files (/node/*: certificates, settings) into it and switch_root to its /sbin/node-init.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
insmod /virtio_blk.ko
n=0
while [ ! -b /dev/vda ] && [ $n -lt 300 ]; do usleep 20000; n=$((n + 1)); done
mount -t ext4 -o rw,noatime /dev/vda /newroot || { echo '@@NODE {"ev":"no-root"}'; poweroff -f; }
mkdir -p /newroot/etc/node && cp -a /node/. /newroot/etc/node/
umount /proc /sys /dev
exec switch_root /newroot /sbin/node-init
