#!/usr/bin/bash

# ref: https://gist.github.com/kiler129/215e2c8de853209ca429ad5ed40ce128

set -e -o errexit -o pipefail -o nounset


# Do not modify these variables (set by Proxmox when calling the script)
vmId="$1"
runPhase="$2"
echo ">>> Entering $runPhase on VM=$vmId" > /dev/kmsg

case "$runPhase" in
    pre-start)
      echo "### rescan pcie bus..." > /dev/kmsg
      echo 1 > /sys/bus/pci/rescan
      sleep 2
      ;;
    post-start)
      ;;
    pre-stop)
      echo "### remove gpu/snd devices..." > /dev/kmsg
      GFX_PATH=$(dirname $(grep -l "PCI_ID=1002:1900" /sys/bus/pci/devices/*/uevent))
      SND_PATH=$(dirname $(grep -l "PCI_ID=1002:1640" /sys/bus/pci/devices/*/uevent))
      echo 1 > ${GFX_PATH}/remove
      sleep 1
      echo 1 > ${SND_PATH}/remove
      sleep 1
      ;;
    post-stop)
      echo "### rescan pcie bus..." > /dev/kmsg
      echo 1 > /sys/bus/pci/rescan
      sleep 2
      ;;
    *)
      echo "### Unknown run phase \"$runPhase\"!" > /dev/kmsg
      ;;
esac

echo "<<< Leaving $runPhase on VM=$vmId" > /dev/kmsg
