//! The recorded EliteDesk 800 G4 host (`testdata/elitedesk-800-g4`): the seed's setup, replayed
//! with this crate's edits on the `fresh` files, gives the `configured` files.

use std::path::PathBuf;

use expect_test::expect;
use vfiokit_kcmdline::{
    BootLoader, Cmdline, Found, GrubDefault, KernelCmdlineFile, ModprobeConf, ModprobeDir,
    ModulesFile,
};
use vfiokit_sysfs::SysRoot;

fn host(state: &str) -> SysRoot {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/elitedesk-800-g4")
        .join(state);
    SysRoot::new(dir).expect("recorded host")
}

#[test]
fn grub_edit_of_fresh_gives_configured() {
    let fresh = GrubDefault::load(&host("fresh")).unwrap().unwrap();
    let configured = GrubDefault::load(&host("configured")).unwrap().unwrap();
    assert!(fresh.problems().is_empty());
    assert_eq!(
        fresh.cmdline_linux_default().unwrap().unwrap().render(),
        "quiet"
    );
    assert_eq!(fresh.cmdline_linux().unwrap().unwrap().render(), "");

    let mut edited = fresh.clone();
    let iommu = |c: &mut Cmdline| {
        c.set("intel_iommu", Some("on"));
        c.set("iommu", Some("pt"));
    };
    assert!(edited.edit_cmdline_linux_default(iommu).unwrap());
    assert_eq!(edited.render(), configured.render());
    let mut again = configured.clone();
    assert!(!again.edit_cmdline_linux_default(iommu).unwrap());
    assert_eq!(again.render(), configured.render());
    assert!(
        GrubDefault::load_dir(&host("configured"))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn modules_edit_of_fresh_gives_configured() {
    let mut m = ModulesFile::load(&host("fresh")).unwrap().unwrap();
    assert!(m.modules().is_empty());
    for name in ["vfio", "vfio_iommu_type1", "vfio_pci", "vfio_virqfd"] {
        assert!(m.add(name));
    }
    let configured = ModulesFile::load(&host("configured")).unwrap().unwrap();
    assert_eq!(m.render(), configured.render());
    assert!(configured.contains("vfio-pci"));
    assert!(!m.add("vfio-pci"));
    // The seed's flaw: vfio_virqfd is gone since 6.2; removing it touches that line only.
    assert!(m.remove("vfio_virqfd"));
    assert_eq!(m.render(), configured.render().replace("vfio_virqfd\n", ""));
}

#[test]
fn modprobe_dir_answers_across_files() {
    let dir = ModprobeDir::load(&host("configured")).unwrap();
    let names: Vec<&str> = dir.files().iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["pve-blacklist.conf", "vfio.conf"]);
    assert!(dir.problems().is_empty());
    assert_eq!(
        dir.blacklisted("snd-hda-intel"),
        [Found {
            file: "vfio.conf".into(),
            line: 3,
            value: None
        }]
    );
    assert_eq!(dir.blacklisted("nvidiafb")[0].file, "pve-blacklist.conf");
    assert_eq!(
        dir.options("vfio_pci", "ids"),
        [Found {
            file: "vfio.conf".into(),
            line: 7,
            value: Some("8086:3e92,8086:a348".into())
        }]
    );
    assert_eq!(
        dir.options("vfio_iommu_type1", "allow_unsafe_interrupts")[0].line,
        11
    );
    assert!(dir.softdeps("i915").is_empty());

    let fresh = ModprobeDir::load(&host("fresh")).unwrap();
    assert!(fresh.blacklisted("i915").is_empty());
    assert!(fresh.file("vfio.conf").is_none());
}

#[test]
fn seed_vfio_conf_edits_are_empty_on_the_configured_host() {
    let root = host("configured");
    let text = std::fs::read_to_string(root.etc("modprobe.d/vfio.conf")).unwrap();
    let mut conf = ModprobeConf::load(&root, "vfio.conf").unwrap().unwrap();
    assert!(!conf.merge_ids("vfio-pci", &["8086:3e92", "8086:A348"]));
    for m in ["i915", "snd-hda-intel", "snd_sof_pci_intel_cnl"] {
        assert!(!conf.add_blacklist(m));
    }
    assert!(!conf.set_option("kvm", "ignore_msrs", Some("1")));
    assert_eq!(conf.render(), text);

    // What vfiokit proposes instead of blacklisting: a softdep, then dropping the risky option.
    assert!(conf.add_softdep("i915", &["vfio-pci"]));
    assert!(conf.remove_ids("vfio-pci", &["8086:a348"]));
    assert!(conf.set_option("vfio_iommu_type1", "allow_unsafe_interrupts", Some("0")));
    expect![[r#"
        # don't load driver for iGPU and sound card
        blacklist i915
        blacklist snd_hda_intel
        blacklist snd_sof_pci_intel_cnl

        # load vfio-pci driver instead
        options vfio-pci ids=8086:3e92

        #
        options kvm ignore_msrs=1
        options vfio_iommu_type1 allow_unsafe_interrupts=0
        softdep i915 pre: vfio-pci
    "#]]
    .assert_eq(&conf.render());
}

#[test]
fn boot_loader_and_proc_cmdline() {
    for state in ["fresh", "configured"] {
        let root = host(state);
        let b = BootLoader::detect(&root);
        assert_eq!(b, BootLoader::Grub);
        assert_eq!(b.cmdline_path(&root), Some(root.etc("default/grub")));
        assert!(KernelCmdlineFile::load(&root).unwrap().is_none());
    }
    let root = host("configured");
    let proc = Cmdline::parse(&std::fs::read_to_string(root.proc_cmdline()).unwrap());
    assert_eq!(proc.get("intel_iommu"), Some(Some("on")));
    assert_eq!(proc.get("ro"), Some(None));
    assert_eq!(
        proc.list_items("pcie_acs_override"),
        [
            "downstream",
            "multifunction",
            "id:8086:a348",
            "id:8086:a370"
        ]
    );
}

#[test]
fn odd_grub_files() {
    // Stock Debian, CRLF, no final newline, single quotes, two assignments, a drop-in style line.
    for (input, want) in [
        (
            "GRUB_DEFAULT=0\r\nGRUB_CMDLINE_LINUX_DEFAULT='quiet splash'\r\nGRUB_CMDLINE_LINUX=\"\"",
            "GRUB_DEFAULT=0\r\nGRUB_CMDLINE_LINUX_DEFAULT='quiet splash intel_iommu=on'\r\nGRUB_CMDLINE_LINUX=\"\"",
        ),
        (
            "GRUB_CMDLINE_LINUX_DEFAULT=quiet\nGRUB_CMDLINE_LINUX_DEFAULT=\"$GRUB_CMDLINE_LINUX_DEFAULT iommu=pt\"",
            "GRUB_CMDLINE_LINUX_DEFAULT=quiet\nGRUB_CMDLINE_LINUX_DEFAULT=\"$GRUB_CMDLINE_LINUX_DEFAULT iommu=pt intel_iommu=on\"",
        ),
        (
            "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet xintel_iommu=on\"\n",
            "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet xintel_iommu=on intel_iommu=on\"\n",
        ),
        (
            "GRUB_TIMEOUT=5",
            "GRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX_DEFAULT=\"intel_iommu=on\"\n",
        ),
    ] {
        let mut g = GrubDefault::parse(input);
        assert!(
            g.edit_cmdline_linux_default(|c| {
                c.set("intel_iommu", Some("on"));
            })
            .unwrap()
        );
        assert_eq!(g.render(), want);
    }
}
