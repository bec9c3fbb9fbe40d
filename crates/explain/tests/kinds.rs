//! Every kind against real variants of its messages — from the kernel, QEMU, qemu-server and
//! libvirt, across versions (`../shared/reference/log-messages.md`) — each behind every prefix
//! format a log can carry. The kind and the device must not depend on the prefix.

use vfiokit_explain::{KINDS, KindId, classify, explain};

/// `(kind, line, device)`.
const VARIANTS: &[(KindId, &str, Option<&str>)] = &[
    // bar-cant-reserve: pci.c __pci_request_region, setup-res.c ≤6.7 and 6.8+ wordings.
    (
        KindId::BarCantReserve,
        "vfio-pci 0000:07:00.0: BAR 1: can't reserve [mem 0xd0000000-0xdfffffff 64bit pref]",
        Some("0000:07:00.0"),
    ),
    (
        KindId::BarCantReserve,
        "vfio-pci 0000:c5:00.0: ROM [??? 0x00000000 flags 0x20000000]: can't assign; bogus alignment",
        Some("0000:c5:00.0"),
    ),
    (
        KindId::BarCantReserve,
        "nvidia 0000:01:00.0: device not available (can't reserve [mem 0xd0000000-0xdfffffff 64bit pref])",
        Some("0000:01:00.0"),
    ),
    (
        KindId::BarCantReserve,
        "pci 0000:03:00.0: BAR 6: no space for [mem size 0x00020000 pref]",
        Some("0000:03:00.0"),
    ),
    (
        KindId::BarCantReserve,
        "pci 0000:03:00.0: BAR 0 [mem size 0x01000000]: can't assign; no space",
        Some("0000:03:00.0"),
    ),
    (
        KindId::BarCantReserve,
        "vfio-pci 0000:03:00.0: BAR 2 [mem 0xd0000000-0xdfffffff 64bit pref]: not claimed; can't enable device",
        Some("0000:03:00.0"),
    ),
    (
        KindId::BarCantReserve,
        "pci 0000:03:00.0: BAR 0: can't assign [mem 0xf6000000-0xf6ffffff] (bogus alignment)",
        Some("0000:03:00.0"),
    ),
    // group-not-viable: QEMU ≥2.9 and ≤2.8, the hint, qemu-server, old kernels.
    (
        KindId::GroupNotViable,
        "kvm: -device vfio-pci,host=0000:01:00.0,id=hostpci0,bus=pci.0,addr=0x10: vfio 0000:01:00.0: group 13 is not viable",
        Some("0000:01:00.0"),
    ),
    (
        KindId::GroupNotViable,
        "qemu-system-x86_64: -device vfio-pci,host=02:00.0: vfio: error, group 1 is not viable, please ensure all devices within the iommu_group are bound to their vfio bus driver.",
        Some("0000:02:00.0"),
    ),
    (
        KindId::GroupNotViable,
        "Please ensure all devices within the iommu_group are bound to their vfio bus driver.",
        None,
    ),
    (
        KindId::GroupNotViable,
        "can't unbind/bind PCI group to VFIO '0000:01:00.0'",
        Some("0000:01:00.0"),
    ),
    (
        KindId::GroupNotViable,
        "vfio-pci 0000:01:00.1: Device added to live group 1!",
        Some("0000:01:00.1"),
    ),
    (
        KindId::GroupNotViable,
        "kvm: -device vfio-pci,host=0000:01:00.0,id=hostpci0: vfio 0000:01:00.0: error getting device from group 13: Invalid argument",
        Some("0000:01:00.0"),
    ),
    // reset-timeout: pci_dev_wait, pre-4.14 FLR, power-state texts of several kernels, QEMU, vfio.
    (
        KindId::ResetTimeout,
        "vfio-pci 0000:0a:00.0: not ready 65535ms after FLR; giving up",
        Some("0000:0a:00.0"),
    ),
    (
        KindId::ResetTimeout,
        "vfio-pci 0000:0a:00.0: not ready 1023ms after bus reset; waiting",
        Some("0000:0a:00.0"),
    ),
    (
        KindId::ResetTimeout,
        "vfio-pci 0000:0a:00.0: Failed to return from FLR",
        Some("0000:0a:00.0"),
    ),
    (
        KindId::ResetTimeout,
        "vfio-pci 0000:03:00.0: Unable to change power state from D3cold to D0, device inaccessible",
        Some("0000:03:00.0"),
    ),
    (
        KindId::ResetTimeout,
        "vfio-pci 0000:03:00.0: can't change power state from D3cold to D0 (config space inaccessible)",
        Some("0000:03:00.0"),
    ),
    (
        KindId::ResetTimeout,
        "vfio-pci 0000:01:00.0: Refused to change power state, currently in D3",
        Some("0000:01:00.0"),
    ),
    (
        KindId::ResetTimeout,
        "vfio-pci 0000:01:00.0: timed out waiting for pending transaction; performing function level reset anyway",
        Some("0000:01:00.0"),
    ),
    (
        KindId::ResetTimeout,
        "kvm: vfio: Unable to power on device, stuck in D3",
        None,
    ),
    (
        KindId::ResetTimeout,
        "vfio-pci 0000:0b:00.0: vfio_bar_restore: reset recovery - restoring BARs",
        Some("0000:0b:00.0"),
    ),
    (
        KindId::ResetTimeout,
        "vfio_bar_restore: 0000:01:00.0 reset recovery - restoring bars",
        Some("0000:01:00.0"),
    ),
    // dmar-fault: 3.x two-line, 4.x, 5.0–5.13 PASID, 5.14+ NO_PASID, 0x BDF, interrupt remapping.
    (
        KindId::DmarFault,
        "DMAR: DRHD: handling fault status reg 3",
        None,
    ),
    (
        KindId::DmarFault,
        "dmar: DMAR:[DMA Read] Request device [00:1a.0] fault addr bdbfc000 ",
        Some("0000:00:1a.0"),
    ),
    (
        KindId::DmarFault,
        "dmar: DMAR:[fault reason 06] PTE Read access is not set",
        None,
    ),
    (
        KindId::DmarFault,
        "DMAR: [DMA Write] Request device [01:00.0] fault addr 7b657000 [fault reason 05] PTE Write access is not set",
        Some("0000:01:00.0"),
    ),
    (
        KindId::DmarFault,
        "DMAR: [DMA Read] Request device [03:00.0] PASID ffffffff fault addr 7b657000 [fault reason 06] PTE Read access is not set",
        Some("0000:03:00.0"),
    ),
    (
        KindId::DmarFault,
        "DMAR: [DMA Read NO_PASID] Request device [00:02.0] fault addr 0x7b000000 [fault reason 0x06] PTE Read access is not set",
        Some("0000:00:02.0"),
    ),
    (
        KindId::DmarFault,
        "DMAR: [DMA Read NO_PASID] Request device [0x00:0x14.0] fault addr 0x7a000000 [fault reason 0x02] Present bit in context entry is clear",
        Some("0000:00:14.0"),
    ),
    (
        KindId::DmarFault,
        "DMAR: [INTR-REMAP] Request device [f0:1f.0] fault index 0x0 [fault reason 0x25] Blocked a compatibility format interrupt request",
        Some("0000:f0:1f.0"),
    ),
    (
        KindId::DmarFault,
        "dmar_fault: 44 callbacks suppressed",
        None,
    ),
    // amd-vi-page-fault: ≤4.19 device=, 4.20+ on the PCI device, 6.0+ domain in device=.
    (
        KindId::AmdViPageFault,
        "vfio-pci 0000:04:10.0: AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x0037 address=0x7b657064 flags=0x0000]",
        Some("0000:04:10.0"),
    ),
    (
        KindId::AmdViPageFault,
        "AMD-Vi: Event logged [IO_PAGE_FAULT device=07:00.0 domain=0x000f address=0x00000000fdf9c140 flags=0x0030]",
        Some("0000:07:00.0"),
    ),
    (
        KindId::AmdViPageFault,
        "iommu ivhd0: AMD-Vi: Event logged [IO_PAGE_FAULT device=0000:c5:00.0 domain=0x0000 address=0x1000 flags=0x0000]",
        Some("0000:c5:00.0"),
    ),
    (
        KindId::AmdViPageFault,
        "AMD IOMMU: Event logged [IO_PAGE_FAULT device=01:00.0 domain=0x0001 address=0x00000000ffffd000 flags=0x0000]",
        Some("0000:01:00.0"),
    ),
    (
        KindId::AmdViPageFault,
        "amd_iommu_report_page_fault: 5135 callbacks suppressed",
        None,
    ),
    // no-interrupt-remapping: type1 (3.x and later), iommufd, DMAR-IR platform lines.
    (
        KindId::NoInterruptRemapping,
        "vfio_iommu_type1_attach_group: No interrupt remapping support.  Use the module param \"allow_unsafe_interrupts\" to enable VFIO IOMMU support on this platform",
        None,
    ),
    (
        KindId::NoInterruptRemapping,
        "vfio_iommu_type1_open: No interrupt remapping support.  Use the module param \"allow_unsafe_interrupts\" to enable VFIO IOMMU support on this platform",
        None,
    ),
    (
        KindId::NoInterruptRemapping,
        "iommufd: MSI interrupts are not secure, they cannot be isolated by the platform. Check that platform features like interrupt remapping are enabled. Use the \"allow_unsafe_interrupts\" module parameter to override",
        None,
    ),
    (
        KindId::NoInterruptRemapping,
        "DMAR-IR: This system BIOS has enabled interrupt remapping",
        None,
    ),
    (
        KindId::NoInterruptRemapping,
        "DMAR-IR: Failed to enable irq remapping.  You are vulnerable to irq-injection attacks.",
        None,
    ),
    (
        KindId::NoInterruptRemapping,
        "DMAR-IR: Not enabling interrupt remapping",
        None,
    ),
    // iommu-not-present: qemu-server old and new, QEMU, libvirt, the weak kernel hints.
    (
        KindId::IommuNotPresent,
        "TASK ERROR: cannot prepare PCI pass-through, IOMMU not present",
        None,
    ),
    (KindId::IommuNotPresent, "IOMMU not present", None),
    (
        KindId::IommuNotPresent,
        "kvm: -device vfio-pci,host=0000:01:00.0,id=hostpci0: vfio 0000:01:00.0: no iommu_group found: No such file or directory",
        Some("0000:01:00.0"),
    ),
    (
        KindId::IommuNotPresent,
        "qemu-system-x86_64: -device vfio-pci,host=01:00.0: vfio: No available IOMMU models",
        Some("0000:01:00.0"),
    ),
    (
        KindId::IommuNotPresent,
        "error: unsupported configuration: host doesn't support VFIO PCI passthrough",
        None,
    ),
    (
        KindId::IommuNotPresent,
        "vfio-pci: probe of 0000:01:00.0 failed with error -22",
        Some("0000:01:00.0"),
    ),
    (KindId::IommuNotPresent, "DMAR: IOMMU disabled", None),
    // rmrr: ≤6.5 (with and without DMAR:), 6.5+ core text, the QEMU companion, relax_rmrr.
    (
        KindId::Rmrr,
        "vfio-pci 0000:03:00.0: Device is ineligible for IOMMU domain attach due to platform RMRR requirement.  Contact your platform vendor.",
        Some("0000:03:00.0"),
    ),
    (
        KindId::Rmrr,
        "vfio-pci 0000:03:00.0: DMAR: Device is ineligible for IOMMU domain attach due to platform RMRR requirement.  Contact your platform vendor.",
        Some("0000:03:00.0"),
    ),
    (
        KindId::Rmrr,
        "vfio-pci 0000:00:14.0: Firmware has requested this device have a 1:1 IOMMU mapping, rejecting configuring the device without a 1:1 mapping. Contact your platform vendor.",
        Some("0000:00:14.0"),
    ),
    (
        KindId::Rmrr,
        "kvm: -device vfio-pci,host=0000:03:00.0,id=hostpci0: vfio 0000:03:00.0: failed to setup container for group 7: Failed to set group container: Invalid argument",
        Some("0000:03:00.0"),
    ),
    (
        KindId::Rmrr,
        "Intel-IOMMU: assuming all RMRRs are relaxable. This can lead to instability or data loss",
        None,
    ),
    // igd-legacy-unsupported: QEMU ≤9.2, 10.0/10.1, qemu-server.
    (
        KindId::IgdLegacyUnsupported,
        "kvm: -device vfio-pci,host=0000:00:02.0,id=hostpci0,bus=pci.0,addr=0x2: IGD device 0000:00:02.0 cannot support legacy mode due to existing devices at address 1f.0",
        Some("0000:00:02.0"),
    ),
    (
        KindId::IgdLegacyUnsupported,
        "qemu-system-x86_64: -device vfio-pci,host=00:02.0: IGD device 0000:00:02.0 has no ROM, legacy mode disabled",
        Some("0000:00:02.0"),
    ),
    (
        KindId::IgdLegacyUnsupported,
        "IGD device 0000:00:02.0 does not support OpRegion access,legacy mode disabled",
        Some("0000:00:02.0"),
    ),
    (
        KindId::IgdLegacyUnsupported,
        "IGD device 0000:00:02.0 is unsupported in legacy mode, try SandyBridge or newer",
        Some("0000:00:02.0"),
    ),
    (
        KindId::IgdLegacyUnsupported,
        "kvm: -device vfio-pci,host=0000:00:02.0,id=hostpci0,bus=pci.0,addr=0x2,x-igd-legacy-mode=on: vfio 0000:00:02.0: Machine is not i440fx, assigned BDF is not 00:02.0, or device 46d1 (gen 12) doesn't support legacy mode",
        Some("0000:00:02.0"),
    ),
    (
        KindId::IgdLegacyUnsupported,
        "kvm: -device vfio-pci,host=0000:00:02.0,id=hostpci0: vfio 0000:00:02.0: Device has no ROM",
        Some("0000:00:02.0"),
    ),
    (
        KindId::IgdLegacyUnsupported,
        "IGD legacy mode disabled",
        None,
    ),
    (
        KindId::IgdLegacyUnsupported,
        "legacy IGD assignment requires VGA mode to be 'none'",
        None,
    ),
    (
        KindId::IgdLegacyUnsupported,
        "legacy IGD assignment is not compatible with q35",
        None,
    ),
    // qemu-property-not-found: ≥5.2 and older property texts, qdev values, QAPI parameters.
    (
        KindId::QemuPropertyNotFound,
        "kvm: -device vfio-pci,host=0000:00:02.0,id=hostpci0,x-igd-legacy-mode=on: Property 'vfio-pci.x-igd-legacy-mode' not found",
        Some("0000:00:02.0"),
    ),
    (
        KindId::QemuPropertyNotFound,
        "qemu-system-x86_64: -device vfio-pci,host=0000:01:00.0,x-foo=1: Property '.x-foo' not found",
        Some("0000:01:00.0"),
    ),
    (
        KindId::QemuPropertyNotFound,
        "kvm: -device vfio-pci,host=0000:01:00.0,id=hostpci0,rombar=2: Property 'vfio-pci.rombar' doesn't take value '2'",
        Some("0000:01:00.0"),
    ),
    (
        KindId::QemuPropertyNotFound,
        "kvm: -set device.hostpci0.x-igd-gms=0x20: Parameter 'x-igd-gms' expects 0~0x10",
        None,
    ),
    // device-in-use: qemu-server, QEMU new and old, libvirt.
    (
        KindId::DeviceInUse,
        "PCI device '0000:01:00.0' already in use by VMID '101'",
        Some("0000:01:00.0"),
    ),
    (
        KindId::DeviceInUse,
        "TASK ERROR: PCI device '0000:01:00.0' already in use by running VMID '101'",
        Some("0000:01:00.0"),
    ),
    (
        KindId::DeviceInUse,
        "kvm: -device vfio-pci,host=0000:01:00.0,id=hostpci0: vfio 0000:01:00.0: failed to open /dev/vfio/13: Device or resource busy",
        Some("0000:01:00.0"),
    ),
    (
        KindId::DeviceInUse,
        "qemu-system-x86_64: -device vfio-pci,host=01:00.0: vfio: error opening /dev/vfio/13: Device or resource busy",
        Some("0000:01:00.0"),
    ),
    (
        KindId::DeviceInUse,
        "kvm: -device vfio-pci,host=0000:01:00.0: vfio 0000:01:00.0: error getting device from group 13: Device or resource busy",
        Some("0000:01:00.0"),
    ),
    (
        KindId::DeviceInUse,
        "error: Requested operation is not valid: PCI device 0000:01:00.0 is in use by driver QEMU, domain win10",
        Some("0000:01:00.0"),
    ),
    (
        KindId::DeviceInUse,
        "could not find a free device for 'hostpci0'",
        None,
    ),
    // mapping-invalid: qemu-server with pve-guest-common reasons.
    (
        KindId::MappingInvalid,
        "PCI device mapping invalid (hardware probably changed): pci device '0000:01:00.0' not found",
        Some("0000:01:00.0"),
    ),
    (
        KindId::MappingInvalid,
        "TASK ERROR: PCI device mapping invalid (hardware probably changed): 'iommugroup' does not match for '0000:01:00.0' (13 != 14)",
        Some("0000:01:00.0"),
    ),
    (
        KindId::MappingInvalid,
        "PCI device mapping not found for 'gpu'",
        None,
    ),
    // rom-header-invalid: kernel header and data signatures, QEMU read failure and hints.
    (
        KindId::RomHeaderInvalid,
        "vfio-pci 0000:00:02.0: Invalid PCI ROM header signature: expecting 0xaa55, got 0xa1f9",
        Some("0000:00:02.0"),
    ),
    (
        KindId::RomHeaderInvalid,
        "vfio-pci 0000:01:00.0: Invalid PCI ROM header signature: expecting 0xaa55, got 0xffff",
        Some("0000:01:00.0"),
    ),
    (
        KindId::RomHeaderInvalid,
        "pci 0000:01:00.0: Invalid PCI ROM data signature: expecting 0x52494350, got 0xcb2a0000",
        Some("0000:01:00.0"),
    ),
    (
        KindId::RomHeaderInvalid,
        "kvm: -device vfio-pci,host=0000:01:00.0,id=hostpci0: vfio-pci: Cannot read device rom at 0000:01:00.0",
        Some("0000:01:00.0"),
    ),
    (
        KindId::RomHeaderInvalid,
        "Device option ROM contents are probably invalid (check dmesg).",
        None,
    ),
    (
        KindId::RomHeaderInvalid,
        "Skip option ROM probe with rombar=0, or load from file with romfile=",
        None,
    ),
    // rom-no-image.
    (
        KindId::RomNoImage,
        "vfio-pci 0000:0b:00.0: No more image in the PCI ROM",
        Some("0000:0b:00.0"),
    ),
    (
        KindId::RomNoImage,
        "amdgpu 0000:03:00.0: No more image in the PCI ROM",
        Some("0000:03:00.0"),
    ),
    // bar-mmap-failed.
    (
        KindId::BarMmapFailed,
        "kvm: Failed to mmap 0000:01:00.0 BAR 1. Performance may be slow",
        Some("0000:01:00.0"),
    ),
    (
        KindId::BarMmapFailed,
        "qemu-system-x86_64: -device vfio-pci,host=0000:07:00.0: Failed to mmap 0000:07:00.0 BAR 3. Performance may be slow",
        Some("0000:07:00.0"),
    ),
    // reset-unsupported: pve-common, qemu-server of three eras, QEMU, libvirt.
    (
        KindId::ResetUnsupported,
        "error writing '1' to '/sys/bus/pci/devices/0000:c5:00.0/reset': Inappropriate ioctl for device",
        Some("0000:c5:00.0"),
    ),
    (
        KindId::ResetUnsupported,
        "failed to reset PCI device '0000:c5:00.0', but trying to continue as not all devices need a reset",
        Some("0000:c5:00.0"),
    ),
    (
        KindId::ResetUnsupported,
        "TASK ERROR: can't reset PCI device '0000:01:00.0'",
        Some("0000:01:00.0"),
    ),
    (
        KindId::ResetUnsupported,
        "can't reset pci device '0000:01:00.0'",
        Some("0000:01:00.0"),
    ),
    (
        KindId::ResetUnsupported,
        "kvm: vfio: Cannot reset device 0000:0b:00.1, no available reset mechanism.",
        Some("0000:0b:00.1"),
    ),
    (
        KindId::ResetUnsupported,
        "error: Failed to reset PCI device: internal error: Unable to reset PCI device 0000:01:00.0: no FLR, PM reset or bus reset available",
        Some("0000:01:00.0"),
    ),
    (
        KindId::ResetUnsupported,
        "internal error: Active 0000:01:00.1 devices on bus with 0000:01:00.0, not doing bus reset",
        Some("0000:01:00.1"),
    ),
    // reset-depends-on-group.
    (
        KindId::ResetDependsOnGroup,
        "kvm: vfio: Cannot reset device 0000:c5:00.6, depends on group 20 which is not owned.",
        Some("0000:c5:00.6"),
    ),
    (
        KindId::ResetDependsOnGroup,
        "qemu-system-x86_64: vfio: Cannot reset device 0000:01:00.1, depends on group 14 which is not owned.",
        Some("0000:01:00.1"),
    ),
    (
        KindId::ResetDependsOnGroup,
        "kvm: vfio: hot reset info failed: Operation not permitted",
        None,
    ),
    // ignored-msr: ≤5.8 with vcpu, 5.10+, 6.4+.
    (
        KindId::IgnoredMsr,
        "kvm: kvm [4638]: ignored rdmsr: 0x1ad data 0x0",
        None,
    ),
    (
        KindId::IgnoredMsr,
        "kvm [2034]: vcpu0, guest rIP: 0xfffff80002a4e2c7 ignored rdmsr: 0x1c9",
        None,
    ),
    (
        KindId::IgnoredMsr,
        "kvm [2034]: vcpu1 unhandled wrmsr: 0x38d data 0x0",
        None,
    ),
    (
        KindId::IgnoredMsr,
        "kvm: kvm [1234]: Unhandled WRMSR(0xc0010020) = 0x1",
        None,
    ),
    // acs-override-active.
    (
        KindId::AcsOverrideActive,
        "Warning: PCIe ACS overrides enabled; This may allow non-IOMMU protected peer-to-peer DMA",
        None,
    ),
    (
        KindId::AcsOverrideActive,
        "Out of PCIe ACS override slots (16)",
        None,
    ),
    (KindId::AcsOverrideActive, "PCIe ACS invalid ID", None),
    (
        KindId::AcsOverrideActive,
        "Kernel command line: BOOT_IMAGE=/boot/vmlinuz-6.8.12-11-pve root=/dev/mapper/pve-root ro quiet pcie_acs_override=downstream,multifunction",
        None,
    ),
    // vga-console-deactivated: vga_remove_vgacon, decodes texts of three eras.
    (
        KindId::VgaConsoleDeactivated,
        "vfio-pci 0000:00:02.0: vgaarb: deactivate vga console",
        Some("0000:00:02.0"),
    ),
    (
        KindId::VgaConsoleDeactivated,
        "vfio-pci 0000:00:02.0: vgaarb: VGA decodes changed: olddecodes=io+mem,decodes=io+mem:owns=io+mem",
        Some("0000:00:02.0"),
    ),
    (
        KindId::VgaConsoleDeactivated,
        "vfio-pci 0000:07:00.0: vgaarb: changed VGA decodes: olddecodes=io+mem,decodes=io+mem:owns=none",
        Some("0000:07:00.0"),
    ),
    (
        KindId::VgaConsoleDeactivated,
        "vgaarb: device changed decodes: PCI:0000:01:00.0,olddecodes=io+mem,decodes=none:owns=none",
        Some("0000:01:00.0"),
    ),
    // ir-enabled.
    (
        KindId::IrEnabled,
        "DMAR-IR: Enabled IRQ remapping in x2apic mode",
        None,
    ),
    (
        KindId::IrEnabled,
        "DMAR-IR: Enabled IRQ remapping in xapic mode",
        None,
    ),
    (
        KindId::IrEnabled,
        "AMD-Vi: Interrupt remapping enabled",
        None,
    ),
    // gvt-unavailable: the Comet Lake field note's systemd line, and modprobe's own.
    (
        KindId::GvtUnavailable,
        "systemd-modules-load[824]: Failed to insert module 'kvmgt': No such device",
        None,
    ),
    (
        KindId::GvtUnavailable,
        "modprobe: ERROR: could not insert 'kvmgt': No such device",
        None,
    ),
];

/// The prefixes a line can come with: none, dmesg (plain, caller id, `-T`, `-r`), journalctl
/// and syslog (also with the old kernel time stamp), `-o short-iso`, QEMU `-msg timestamp=on`.
const PREFIXES: &[&str] = &[
    "",
    "   ",
    "[   12.345678] ",
    "[   12.345678] [ T1234] ",
    "[Sun Jun  3 20:35:58 2025] ",
    "<4>[   12.345678] ",
    "Jun 03 20:35:58 pve kernel: ",
    "Jun  3 20:35:58 pve kernel: [141156.223634] ",
    "2026-09-26T12:33:17-0700 pve kernel: ",
    "2025-09-03T06:19:15.076547Z ",
    "Jun 03 20:35:58 pve pvedaemon[4242]: ",
];

#[test]
fn every_kind_has_real_variants() {
    for kind in KindId::ALL {
        let n = VARIANTS.iter().filter(|(k, _, _)| k == kind).count();
        assert!(n >= 2, "{kind}: {n} variants");
    }
}

#[test]
fn variants_get_their_kind_and_device_behind_every_prefix() {
    let mut failures = Vec::new();
    for (kind, line, dev) in VARIANTS {
        for prefix in PREFIXES {
            let full = format!("{prefix}{line}");
            let got = classify(&full).map(|m| (m.kind, m.device));
            let want = Some((*kind, dev.map(str::to_string)));
            if got != want {
                failures.push(format!("{full:?}\n  got {got:?}\n want {want:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_table_has_each_id_once_with_its_severity() {
    assert_eq!(KINDS.len(), 22);
    assert_eq!(KindId::ALL.len(), 22);
    for id in KindId::ALL {
        assert_eq!(KINDS.iter().filter(|k| k.id == *id).count(), 1, "{id}");
        assert_eq!(KindId::from_id(id.as_str()), Some(*id));
        assert_eq!(serde_json::to_string(id).unwrap(), format!("\"{id}\""));
        let k = id.kind();
        assert!(!k.explanation.is_empty() && !k.fix.is_empty() && !k.summary.is_empty());
    }
    let errors: Vec<&str> = KINDS
        .iter()
        .filter(|k| k.severity == vfiokit_explain::Severity::Error)
        .map(|k| k.id.as_str())
        .collect();
    assert_eq!(errors.len(), 13, "{errors:?}");
    let info: Vec<&str> = KINDS
        .iter()
        .filter(|k| k.severity == vfiokit_explain::Severity::Info)
        .map(|k| k.id.as_str())
        .collect();
    assert_eq!(info, ["vga-console-deactivated", "ir-enabled"]);
}

#[test]
fn ambiguous_container_failure_is_decided_by_the_log() {
    let line = "kvm: -device vfio-pci,host=0000:01:00.0,id=hostpci0: vfio 0000:01:00.0: failed to setup container for group 1: failed to set iommu for container: Operation not permitted";
    let m = classify(line).unwrap();
    assert_eq!(
        (m.kind, m.alternative),
        (KindId::NoInterruptRemapping, Some(KindId::Rmrr))
    );

    let alone = explain(line, None);
    let kinds: Vec<KindId> = alone.explained.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [KindId::NoInterruptRemapping, KindId::Rmrr]);
    assert!(
        alone.explained[0]
            .explanation
            .starts_with("This line is either")
    );

    let with_rmrr = format!(
        "[  80.1] vfio-pci 0000:01:00.0: Device is ineligible for IOMMU domain attach due to platform RMRR requirement.  Contact your platform vendor.\n{line}"
    );
    let kinds: Vec<KindId> = explain(&with_rmrr, None)
        .explained
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, [KindId::Rmrr, KindId::Rmrr]);

    let with_ir = format!(
        "[  80.1] vfio_iommu_type1_attach_group: No interrupt remapping support.  Use the module param \"allow_unsafe_interrupts\" to enable VFIO IOMMU support on this platform\n{line}"
    );
    let kinds: Vec<KindId> = explain(&with_ir, None)
        .explained
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [KindId::NoInterruptRemapping, KindId::NoInterruptRemapping]
    );
}

#[test]
fn hints_take_the_device_and_kind_of_their_message() {
    let log = "\
kvm: -device vfio-pci,host=0000:01:00.0,id=hostpci0: vfio 0000:01:00.0: error getting device from group 13: Device or resource busy
Verify all devices in group 13 are bound to vfio-<bus> or pci-stub and not already in use
kvm: -device vfio-pci,host=0000:02:00.0,id=hostpci1: vfio 0000:02:00.0: group 14 is not viable
Please ensure all devices within the iommu_group are bound to their vfio bus driver.
kvm: -device vfio-pci,host=0000:03:00.0,id=hostpci2: vfio-pci: Cannot read device rom at 0000:03:00.0
Device option ROM contents are probably invalid (check dmesg).
Skip option ROM probe with rombar=0, or load from file with romfile=
TASK ERROR: start failed: QEMU exited with code 1
";
    let report = explain(log, None);
    let got: Vec<(usize, KindId, Option<&str>)> = report
        .explained
        .iter()
        .map(|e| (e.line, e.kind, e.device.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            (1, KindId::DeviceInUse, Some("0000:01:00.0")),
            (2, KindId::DeviceInUse, Some("0000:01:00.0")),
            (3, KindId::GroupNotViable, Some("0000:02:00.0")),
            (4, KindId::GroupNotViable, Some("0000:02:00.0")),
            (5, KindId::RomHeaderInvalid, Some("0000:03:00.0")),
            (6, KindId::RomHeaderInvalid, Some("0000:03:00.0")),
            (7, KindId::RomHeaderInvalid, Some("0000:03:00.0")),
        ]
    );
}

#[test]
fn repeats_fold_and_blank_lines_are_not_counted() {
    let log = "\
[ 1100.941169] vfio-pci 0000:c5:00.0: AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x0000 address=0x1b2801000 flags=0x0050]

[ 1100.941181] vfio-pci 0000:c5:00.0: AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x0000 address=0x1b2802000 flags=0x0050]
[ 1100.941189] vfio-pci 0000:c6:00.0: AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x0000 address=0x1b2803000 flags=0x0050]
   
[ 1197.538259] lanbr: port 2(tap100i0) entered blocking state
";
    let r = explain(log, None);
    let got: Vec<(usize, Option<&str>, usize)> = r
        .explained
        .iter()
        .map(|e| (e.line, e.device.as_deref(), e.count))
        .collect();
    assert_eq!(
        got,
        [(1, Some("0000:c5:00.0"), 2), (4, Some("0000:c6:00.0"), 1)]
    );
    assert_eq!(r.unrecognized, 1);
    assert!(r.has_errors());
    assert_eq!(
        r.explained[0].text,
        "[ 1100.941169] vfio-pci 0000:c5:00.0: AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x0000 address=0x1b2801000 flags=0x0050]"
    );
}
