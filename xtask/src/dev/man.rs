//! What the manual pages say beyond `--help`: exit codes, files, the journal and `undo`, examples
//! from the seed (the EliteDesk 800 G4 of `testdata/`). Data only; `dist.rs` renders it after
//! clap_mangen's sections. A page without an entry gets the exit codes every command shares.

/// The extra sections of one page (`vfiokit-setup-host`).
pub struct Extra {
    /// The page name: `vfiokit`, `vfiokit-setup-host`, `vfiokit-vm-lint`.
    pub page: &'static str,
    /// What exit code 3 means for this command; `None` when it never exits 3.
    pub exit_3: Option<&'static str>,
    /// Files read or written, each with what the command does with it.
    pub files: &'static [(&'static str, &'static str)],
    /// Further sections: title and paragraphs.
    pub sections: &'static [(&'static str, &'static [&'static str])],
    /// Examples: what it does, then the command line.
    pub examples: &'static [(&'static str, &'static str)],
}

/// Exit codes every command shares.
pub const EXIT: &[(&str, &str)] = &[
    (
        "0",
        "Done: the plan was printed or applied, or there was nothing to report.",
    ),
    (
        "1",
        "Error: bad input or an I/O failure; the message names the file (and the line).",
    ),
    ("2", "Usage: an unknown option or a missing argument."),
];

const JOURNAL: &str = "/var/lib/vfiokit/journal.json";
const JOURNAL_WHAT: &str = "Written (mode 0600) before any file by --apply: the old bytes of every file it \
     changes. undo reads it; an interrupted --apply is rolled back from it.";
const LOCK: &str = "/var/lock/vfiokit.lock";
const LOCK_WHAT: &str = "Held while --apply or undo runs, so two never overlap.";

const APPLY: &str = "Without --apply nothing changes: the plan is printed as unified diffs, each added \
     or removed line with its reason, followed by the commands that make it take effect. With \
     --apply each file is read again and compared with what the plan was made from (a concurrent \
     edit aborts before anything is written), the journal is written first, files are replaced \
     atomically, and on the root / the commands run. A failure part-way restores every file \
     already written. Running the same command again gives an empty plan.";
const UNDO: &str = "vfiokit undo restores every file of the last --apply byte for byte from \
     /var/lib/vfiokit/journal.json and removes the files it created; on the root / it then runs \
     the apply's commands again (update-initramfs, update-grub or proxmox-boot-tool refresh) so \
     that the boot files match the restored configuration. A file changed since the apply stops \
     it before anything is restored.";
const ROOT: &str = "--root DIR points the whole program at a recorded host (a directory made by \
     vfiokit capture, or testdata/elitedesk-800-g4/fresh in the source tree): files are read and \
     written under DIR, and commands are recorded in the journal instead of run.";

/// The pages with more to say than `--help`.
pub const EXTRAS: &[Extra] = &[
    Extra {
        page: "vfiokit",
        exit_3: Some(
            "Refused by a safety rule (setup-host, setup-vm, mapping plan) or problems found \
             (verify, vm lint, vbios check).",
        ),
        files: &[
            (
                "/sys, /proc",
                "The host's devices, IOMMU groups, drivers, kernel command line, mounts and routes (read).",
            ),
            (
                "/etc/default/grub, /etc/kernel/cmdline",
                "The kernel command line of GRUB or proxmox-boot-tool (setup-host).",
            ),
            (
                "/etc/modules, /etc/modprobe.d/*.conf",
                "VFIO modules, vfio-pci ids, blacklists and softdeps (setup-host).",
            ),
            (
                "/etc/pve/qemu-server/<vmid>.conf",
                "The VM config (setup-vm, verify, vm lint).",
            ),
            (
                "/etc/pve/mapping/pci.cfg, /etc/pve/mapping/usb.cfg",
                "Cluster resource mappings (mapping plan, setup-vm --mapping).",
            ),
            (JOURNAL, JOURNAL_WHAT),
            (LOCK, LOCK_WHAT),
        ],
        sections: &[
            (
                "SAFETY",
                &[
                    "Giving a device to a VM detaches its whole IOMMU group from the host. vfiokit computes \
                     that collateral first and refuses (exit 3) when a requested device or its group holds \
                     something the host needs: the NIC of the default route, the root disk's controller, \
                     the only USB controller or one with input devices, a platform device. The message \
                     names each device, its role and the alternative. --force-collateral ADDR accepts one \
                     such loss by name.",
                ],
            ),
            ("THE JOURNAL AND UNDO", &[APPLY, UNDO]),
            ("RECORDED HOSTS", &[ROOT]),
        ],
        examples: &[
            (
                "See the IOMMU groups and what each device is to the host:",
                "vfiokit inspect",
            ),
            (
                "Plan the host side for the iGPU and the WiFi card of the seed's EliteDesk, then make it:",
                "vfiokit setup-host --device 00:02.0 --device 00:14.3",
            ),
            (
                "",
                "vfiokit setup-host --device 00:02.0 --device 00:14.3 --apply",
            ),
            (
                "Give VM 100 the iGPU in legacy mode with its ROM, the WiFi, and the keyboard receiver and Bluetooth by USB id:",
                "vfiokit setup-vm --vmid 100 --igd 00:02.0 --romfile igpu-uhd630.rom --device 00:14.3 --usb 062a:4101 --usb 8087:0aaa",
            ),
            ("After the reboot, check everything:", "vfiokit verify"),
            ("Take the last --apply back:", "vfiokit undo"),
        ],
    },
    Extra {
        page: "vfiokit-setup-host",
        exit_3: Some(
            "Refused: a device or its IOMMU group holds something the host needs. Nothing is written.",
        ),
        files: &[
            (
                "/etc/default/grub",
                "GRUB_CMDLINE_LINUX_DEFAULT on GRUB hosts (intel_iommu=on, iommu=pt, ...).",
            ),
            (
                "/etc/kernel/cmdline",
                "The kernel command line on hosts booted by proxmox-boot-tool (systemd-boot).",
            ),
            ("/etc/modules", "The VFIO modules to load at boot."),
            (
                "/etc/modprobe.d/*.conf",
                "vfio.conf (options vfio-pci ids=..., softdeps) is written; stale or harmful lines in the others are removed.",
            ),
            (
                "/sys, /proc/cmdline, /lib/modules/<release>/modules.alias",
                "The devices, the running command line, which driver would claim a device (read).",
            ),
            (JOURNAL, JOURNAL_WHAT),
            (LOCK, LOCK_WHAT),
        ],
        sections: &[
            (
                "COMMANDS RUN",
                &[
                    "With --apply on the root /: update-initramfs -u -k all, then update-grub or proxmox-boot-tool refresh. A reboot makes the change take effect.",
                ],
            ),
            ("THE JOURNAL AND UNDO", &[APPLY, UNDO]),
            ("RECORDED HOSTS", &[ROOT]),
        ],
        examples: &[
            (
                "Plan the iGPU and the WiFi card of the seed's EliteDesk (prints diffs, writes nothing):",
                "vfiokit setup-host --device 00:02.0 --device 00:14.3",
            ),
            (
                "Make the change:",
                "vfiokit setup-host --device 00:02.0 --device 00:14.3 --apply",
            ),
            (
                "See why the audio function is refused (its group holds the host's NIC):",
                "vfiokit setup-host --device 00:1f.3",
            ),
            (
                "Try it on the recorded host in the source tree:",
                "vfiokit setup-host --root testdata/elitedesk-800-g4/fresh --device 00:02.0 --device 00:14.3",
            ),
        ],
    },
    Extra {
        page: "vfiokit-setup-vm",
        exit_3: Some(
            "Refused: the request cannot work on this host or config. Nothing is written.",
        ),
        files: &[
            (
                "/etc/pve/qemu-server/<vmid>.conf",
                "The VM config: every line it does not change is kept byte for byte.",
            ),
            (
                "/etc/pve/mapping/pci.cfg, /etc/pve/mapping/usb.cfg",
                "Read with --mapping.",
            ),
            (
                "/usr/share/kvm/<romfile>",
                "The ROM file --romfile names (checked).",
            ),
            (JOURNAL, JOURNAL_WHAT),
            (LOCK, LOCK_WHAT),
            (
                "/var/lock/qemu-server/lock-<vmid>.conf",
                "Proxmox's lock of the VM, held while the config is written.",
            ),
        ],
        sections: &[
            ("THE JOURNAL AND UNDO", &[APPLY, UNDO]),
            ("RECORDED HOSTS", &[ROOT]),
        ],
        examples: &[
            (
                "The seed's VM: the iGPU in legacy mode with its ROM, the WiFi, the keyboard receiver and Bluetooth by USB id:",
                "vfiokit setup-vm --vmid 100 --igd 00:02.0 --romfile igpu-uhd630.rom --device 00:14.3 --usb 062a:4101 --usb 8087:0aaa",
            ),
            (
                "The same as a qm set command line:",
                "vfiokit setup-vm --vmid 100 --igd 00:02.0 --romfile igpu-uhd630.rom --print qm",
            ),
        ],
    },
    Extra {
        page: "vfiokit-verify",
        exit_3: Some("Problems found: each finding is printed with its fix (with --fix: never)."),
        files: &[
            (
                "/var/lib/vfiokit/capture/kernel-log, journalctl -k -b",
                "The kernel log: its passthrough errors and warnings become kernel-log findings (read).",
            ),
            (JOURNAL, "Written by --fix --apply, as for setup-host."),
            (
                "/sys, /proc/cmdline",
                "IOMMU and interrupt remapping state, drivers, the running command line (read).",
            ),
            (
                "/etc/default/grub, /etc/kernel/cmdline, /etc/modules, /etc/modprobe.d/*.conf",
                "Stale or harmful lines (read).",
            ),
            (
                "/etc/pve/qemu-server/<vmid>.conf, /etc/pve/mapping/pci.cfg",
                "VM devices and mappings (read).",
            ),
        ],
        sections: &[
            (
                "THE RULE TABLE",
                &[
                    "verify runs every rule of vfiokit's rule table; each finding names its rule \
                   (check), its severity and its fix, and says whether a file edit fixes it \
                   (fixable). verify --fix plans those edits as a diff; --fix --apply writes \
                   them through the journal, and undo takes them back. setup-host plans the \
                   same fixes for the files it manages, so what verify flags, setup-host fixes.",
                ],
            ),
            ("THE JOURNAL AND UNDO", &[APPLY, UNDO]),
        ],
        examples: &[
            ("Audit this host:", "vfiokit verify"),
            (
                "Plan the fix of every finding a file edit can fix, then write it:",
                "vfiokit verify --fix",
            ),
            ("", "vfiokit verify --fix --apply"),
            (
                "Audit the seed's hand-configured EliteDesk:",
                "vfiokit verify --root testdata/elitedesk-800-g4/configured",
            ),
        ],
    },
    Extra {
        page: "vfiokit-explain",
        exit_3: Some("A line of an error kind was found (bar-cant-reserve, group-not-viable, …)."),
        files: &[
            (
                "FILE…, - (standard input)",
                "dmesg, journalctl -k, syslog, Proxmox task logs or QEMU output (read).",
            ),
            (
                "journalctl -k -b, dmesg",
                "Without FILE on the root /: the current boot's kernel log (read only).",
            ),
            (
                "/var/lib/vfiokit/capture/kernel-log",
                "Without FILE on another --root: the log a capture recorded.",
            ),
        ],
        sections: &[(
            "KINDS",
            &[
                "Each recognized line gets one of 21 stable kinds. Errors: bar-cant-reserve, \
               group-not-viable, reset-timeout, dmar-fault, amd-vi-page-fault, \
               no-interrupt-remapping, iommu-not-present, rmrr, igd-legacy-unsupported, \
               qemu-property-not-found, device-in-use, mapping-invalid. Warnings: \
               rom-header-invalid, rom-no-image, bar-mmap-failed, reset-unsupported, \
               reset-depends-on-group, ignored-msr, acs-override-active. Information: \
               vga-console-deactivated, ir-enabled. Other lines are only counted.",
            ],
        )],
        examples: &[
            ("Explain this boot's kernel log:", "vfiokit explain"),
            (
                "Explain a log saved elsewhere, with this host's facts:",
                "vfiokit explain /tmp/dmesg.txt",
            ),
            (
                "The seed's ROM message, from standard input:",
                "dmesg | grep vfio | vfiokit explain -",
            ),
        ],
    },
    Extra {
        page: "vfiokit-undo",
        exit_3: None,
        files: &[
            (
                JOURNAL,
                "The journal of the last --apply: the files and their old bytes.",
            ),
            (LOCK, LOCK_WHAT),
        ],
        sections: &[("THE JOURNAL AND UNDO", &[UNDO])],
        examples: &[("Restore what the last --apply changed:", "vfiokit undo")],
    },
    Extra {
        page: "vfiokit-inspect",
        exit_3: None,
        files: &[(
            "/sys, /proc, /lib/modules/<release>/modules.alias",
            "Devices, IOMMU groups, drivers, roles on the host (read only).",
        )],
        sections: &[("RECORDED HOSTS", &[ROOT])],
        examples: &[
            ("This host:", "vfiokit inspect"),
            ("As JSON:", "vfiokit inspect --json"),
        ],
    },
    Extra {
        page: "vfiokit-mapping-plan",
        exit_3: Some(
            "Refused: a node cannot serve the mapping; the message names the node and the reason.",
        ),
        files: &[
            (
                "/etc/pve/mapping/pci.cfg, /etc/pve/mapping/usb.cfg",
                "The cluster resource mappings, written with --apply.",
            ),
            (JOURNAL, JOURNAL_WHAT),
            (LOCK, LOCK_WHAT),
        ],
        sections: &[("THE JOURNAL AND UNDO", &[APPLY, UNDO])],
        examples: &[(
            "Map the iGPU of two nodes under one id:",
            "vfiokit mapping plan --name igpu --device 8086:3e92 --node pve1=/ --node pve2=pve2-capture",
        )],
    },
    Extra {
        page: "vfiokit-capture",
        exit_3: None,
        files: &[
            (
                "/sys, /proc, /etc, /dev/disk/by-id",
                "What is recorded (read only; never a device's rom or BAR files).",
            ),
            (
                "OUT/CAPTURE-NOTES.txt",
                "What was recorded, and what could not be read.",
            ),
            (
                "OUT/var/lib/vfiokit/capture/",
                "qemu-version, zpool-status and kernel-log: what qemu-system-x86_64 --version, zpool status -P and this boot's kernel log say.",
            ),
        ],
        sections: &[],
        examples: &[(
            "Record this host for a bug report:",
            "vfiokit capture --anonymize -o pve-capture",
        )],
    },
    Extra {
        page: "vfiokit-vm-lint",
        exit_3: Some(
            "Errors found: Proxmox would refuse the config, or (with --root) the host cannot serve it.",
        ),
        files: &[(
            "/usr/share/kvm/",
            "ROM files the config names, with --root.",
        )],
        sections: &[],
        examples: &[(
            "Check a VM config:",
            "vfiokit vm lint /etc/pve/qemu-server/100.conf",
        )],
    },
    Extra {
        page: "vfiokit-vbios-extract",
        exit_3: Some(
            "The image holds no firmware volume or nothing usable, or the ROM built from it would not load.",
        ),
        files: &[],
        sections: &[],
        examples: &[(
            "List the firmware volumes and files of a BIOS update:",
            "vfiokit vbios extract Q21_023000.bin --list",
        )],
    },
    Extra {
        page: "vfiokit-vbios-check",
        exit_3: Some("The ROM is malformed, or (with --device) the firmware would not load it."),
        files: &[],
        sections: &[],
        examples: &[(
            "Check the seed's iGPU ROM for the UHD 630:",
            "vfiokit vbios check /usr/share/kvm/igpu-uhd630.rom --device 8086:3e92",
        )],
    },
];

/// The extra sections of `page`, if it has any.
pub fn extra(page: &str) -> Option<&'static Extra> {
    EXTRAS.iter().find(|e| e.page == page)
}
