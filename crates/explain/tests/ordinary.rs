//! Ordinary lines: real lines a passthrough host logs that are not problems (and not kinds).
//! Each must stay unrecognized, behind any prefix.

use vfiokit_explain::{classify, explain};

const ORDINARY: &[&str] = &[
    // Bridge and tap devices at VM start.
    "tap100i0: entered promiscuous mode",
    "device tap100i0 entered promiscuous mode",
    "vmbr0: port 2(tap100i0) entered forwarding state",
    "fwbr100i0: port 2(tap100i0) entered blocking state",
    "tap100i0: left allmulticast mode",
    // Enabling, resetting, BAR assignment, groups.
    "vfio-pci 0000:01:00.0: enabling device (0000 -> 0003)",
    "vfio-pci 0000:01:00.0: ready 1023ms after FLR",
    "vfio-pci 0000:01:00.0: ready 1100ms after bus reset",
    "vfio-pci 0000:01:00.0: Required additional 1500ms to return from FLR",
    "pci 0000:01:00.0: BAR 1: assigned [mem 0xd0000000-0xdfffffff 64bit pref]",
    "pci 0000:c5:00.0: BAR 0 [mem 0x7c00000000-0x7c0fffffff 64bit pref]: assigned",
    "pci 0000:00:02.0: BAR 2 [mem 0xd0000000-0xdfffffff 64bit pref]",
    "pci 0000:00:1c.0: bridge window [io  size 0x1000]: can't assign; no space",
    "pci 0000:00:1c.0: bridge window [io  size 0x1000]: failed to assign",
    "pci 0000:00:1c.0: BAR 13: no space for [io  size 0x1000]",
    "pci 0000:00:02.0: Adding to iommu group 0",
    "pci 0000:c5:00.1: D0 power state depends on 0000:c5:00.0",
    "pci 0000:00:02.0: Video device with shadowed ROM at [mem 0x000c0000-0x000dffff]",
    "pci 0000:01:00.0: [10de:1e89] type 00 class 0x030000 PCIe Legacy Endpoint",
    "pci 0000:01:00.0: PME# supported from D0 D3hot D3cold",
    "snd_hda_intel 0000:00:1f.3: Refused to change power state from D0 to D3hot",
    // IOMMU boot lines.
    "DMAR: IOMMU enabled",
    "DMAR: Host address width 39",
    "DMAR: DRHD base: 0x000000fed90000 flags: 0x0",
    "DMAR: RMRR base: 0x0000003e2e0000 end: 0x0000003e2fffff",
    "DMAR: ATSR flags: 0x0",
    "DMAR-IR: IOAPIC id 2 under DRHD base  0xfed91000 IOMMU 1",
    "DMAR-IR: Queued invalidation will be enabled to support x2apic and Intr-remapping.",
    "DMAR: IOMMU feature pasid inconsistent",
    "DMAR: Intel(R) Virtualization Technology for Directed I/O",
    "pci 0000:00:02.0: DMAR: Skip IOMMU disabling for graphics",
    "i915 0000:00:02.0: [drm] VT-d active for gfx access",
    "AMD-Vi: AMD IOMMUv2 functionality not available on this system - This is not a bug.",
    "AMD-Vi: AMD IOMMUv2 driver by Joerg Roedel <jroedel@suse.de>",
    "AMD-Vi: X2APIC enabled",
    "pci 0000:00:00.2: AMD-Vi: IOMMU performance counters supported",
    "pci 0000:00:00.2: AMD-Vi: Found IOMMU cap 0x40",
    "AMD-Vi: Extended features (0x58f77ef22294a5a): PPR NX GT IA PC GA_vAPIC",
    "perf/amd_iommu: Detected AMD IOMMU #0 (2 banks, 4 counters/bank).",
    "x2apic enabled",
    "Kernel command line: BOOT_IMAGE=/boot/vmlinuz-6.8.12-11-pve root=/dev/mapper/pve-root ro quiet intel_iommu=on iommu=pt",
    // vfio.
    "VFIO - User Level meta-driver version: 0.3",
    "vfio_pci: add [10de:1e89[ffffffff:ffffffff]] class 0x000000/00000000",
    "vfio-pci 0000:07:00.0: vfio_ecap_init: hiding ecap 0x1e@0x258",
    "vfio_ecap_init: 0000:02:00.0 hiding ecap 0xffff@0xffc",
    "vfio-pci 0000:c5:00.0: Relaying device request to user (#0)",
    // vgaarb boot lines.
    "pci 0000:00:02.0: vgaarb: setting as boot VGA device",
    "pci 0000:00:02.0: vgaarb: VGA device added: decodes=io+mem,owns=io+mem,locks=none",
    "pci 0000:00:02.0: vgaarb: bridge control possible",
    "vgaarb: loaded",
    // QEMU 10 info, Proxmox task lines.
    "kvm: OpRegion detected on Intel display 46d1.",
    "kvm: IGD legacy mode enabled, use x-igd-legacy-mode=off to disable it if unwanted.",
    "leftover PCI reservation found for 0000:01:00.0, lets take it...",
    "TASK OK",
    "TASK WARNINGS: 1",
    "start failed: QEMU exited with code 1",
    "TASK ERROR: start failed: QEMU exited with code 1",
    "no PCI device found for '0000:c5:00.0'",
    "WARN: iothread is only valid with virtio disk or virtio-scsi-single controller, ignoring",
    "swtpm_setup: Not overwriting existing state file.",
    "Task finished with 1 warning(s)!",
    "error writing '0000:01:00.0' to '/sys/bus/pci/drivers/vfio-pci/bind': Device or resource busy",
    // Other devices and vendor-reset.
    "usb 1-14: reset full-speed USB device number 3 using xhci_hcd",
    "vfio-pci 0000:0b:00.0: AMD_NAVI10: performing post-reset",
    "vfio-pci 0000:0b:00.0: AMD_NAVI10: reset result = 0",
    "vfio-pci 0000:0b:00.0: AMD_NAVI10: bus reset disabled? yes",
    "e1000e 0000:00:1f.6 eno1: NIC Link is Down",
    "pcieport 0000:00:1c.0: AER: enabled with IRQ 122",
    "input: MOSART Semi. 2.4G Keyboard Mouse as /devices/pci0000:00/0000:00:08.1/0000:c5:00.3/usb1/1-2/1-2.1/1-2.1:1.0/0003:062A:4101.0004/input/input9",
];

#[test]
fn ordinary_lines_are_not_reported() {
    let prefixes = [
        "",
        "[  494.126884] ",
        "Jun 03 20:35:58 pve kernel: ",
        "2026-09-26T12:33:17-0700 pve kernel: ",
    ];
    let mut reported = Vec::new();
    for line in ORDINARY {
        for p in prefixes {
            let full = format!("{p}{line}");
            if let Some(m) = classify(&full) {
                reported.push(format!("{full:?} -> {}", m.kind));
            }
        }
    }
    assert!(reported.is_empty(), "{}", reported.join("\n"));
    let r = explain(&ORDINARY.join("\n"), None);
    assert!(r.explained.is_empty());
    assert_eq!(r.unrecognized, ORDINARY.len());
}
