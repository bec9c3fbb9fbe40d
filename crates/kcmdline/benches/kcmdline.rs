//! Kernel command line and boot file edits: what `setup-host` does to `/etc/default/grub`,
//! `/etc/kernel/cmdline` and `/etc/modprobe.d`. See docs/PERFORMANCE.md.

use criterion::{Criterion, criterion_group, criterion_main};
use vfiokit_kcmdline::{Cmdline, GrubDefault, KernelCmdlineFile, ModprobeConf};

const CMDLINE: &str = "BOOT_IMAGE=/boot/vmlinuz-6.8.12-11-pve root=/dev/mapper/pve-root ro quiet \
    splash=silent mitigations=auto nmi_watchdog=0 console=tty0 console=ttyS0,115200n8 \
    pcie_acs_override=downstream,multifunction vfio-pci.ids=10de:2204,10de:1aef \
    modprobe.blacklist=nouveau,nvidiafb \"acpi_osi=Windows 2020\" -- init_arg";

const GRUB: &str = "# If you change this file, run 'update-grub' afterwards to update\n\
    # /boot/grub/grub.cfg.\n\
    GRUB_DEFAULT=0\n\
    GRUB_TIMEOUT=5\n\
    GRUB_DISTRIBUTOR=`lsb_release -i -s 2> /dev/null || echo Debian`\n\
    GRUB_CMDLINE_LINUX_DEFAULT=\"quiet splash=silent\"\n\
    GRUB_CMDLINE_LINUX=\"\"\n\
    #GRUB_TERMINAL=console\n";

fn edits(c: &mut Criterion) {
    c.bench_function("cmdline_parse_render", |b| {
        b.iter(|| Cmdline::parse(CMDLINE).render())
    });
    c.bench_function("cmdline_passthrough_edits", |b| {
        b.iter(|| {
            let mut cmd = Cmdline::parse(CMDLINE);
            cmd.set("intel_iommu", Some("on"));
            cmd.set("iommu", Some("pt"));
            cmd.add_list_item("vfio-pci.ids", "8086:3e92");
            cmd.remove_list_item("modprobe.blacklist", "nvidiafb");
            cmd.remove("pcie_acs_override");
            cmd.render()
        })
    });
    c.bench_function("grub_edit_cmdline_linux_default", |b| {
        b.iter(|| {
            let mut grub = GrubDefault::parse(GRUB);
            grub.edit_cmdline_linux_default(|c| {
                c.set("intel_iommu", Some("on"));
                c.set("iommu", Some("pt"));
            })
            .expect("edit");
            grub.render()
        })
    });
    c.bench_function("kernel_cmdline_file_edit", |b| {
        b.iter(|| {
            let mut file = KernelCmdlineFile::parse("root=ZFS=rpool/ROOT/pve-1 boot=zfs quiet\n");
            file.edit(|c| {
                c.set("intel_iommu", Some("on"));
            });
            file.render()
        })
    });
    let modprobe: String = (0..200)
        .map(|i| format!("options mod{i} param{i}=value{i}\nblacklist drv{i}\n"))
        .collect::<String>()
        + "softdep snd_hda_intel pre: vfio-pci\n";
    c.bench_function("modprobe_parse_render_400_lines", |b| {
        b.iter(|| ModprobeConf::parse(&modprobe).render())
    });
}

criterion_group!(benches, edits);
criterion_main!(benches);
