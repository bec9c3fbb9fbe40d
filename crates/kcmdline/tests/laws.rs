//! The laws every document obeys, on arbitrary text: `render(parse(s)) == s`, and each edit is
//! idempotent (a second run, on the same value or on the re-parsed text, changes nothing).

use proptest::prelude::*;
use vfiokit_kcmdline::{
    Cmdline, GrubConfig, GrubDefault, KernelCmdlineFile, ModprobeConf, ModulesFile,
};

/// Text made of the characters the parsers care about, so the interesting cases come up often.
fn texty() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ \t\r\n\"'=,#;:$\\\\a-c_-]{0,40}",
        "((GRUB_CMDLINE_LINUX(_DEFAULT)?|export|options|blacklist|softdep|vfio-pci|vfio_pci|ids|pre:|post:|iommu|--|a|b)[ \t=\"',:\\\\\n]{0,2}|\r\n|\n| ){0,16}",
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("iommu".to_string()),
        Just("intel_iommu".to_string()),
        Just("intel-iommu".to_string()),
        Just("a".to_string()),
        Just("ids".to_string()),
        "[a-c_=\" -]{0,3}",
    ]
}

fn value() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(prop_oneof![
        Just("pt".to_string()),
        Just("on".to_string()),
        Just("a b".to_string()),
        "[a-c ,\"\\\\$'\n-]{0,4}",
    ])
}

/// A GRUB defaults file: arbitrary text, or lines that assign and extend the command line.
fn grub_file() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        Just("GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"".to_string()),
        Just("GRUB_CMDLINE_LINUX_DEFAULT=\"$GRUB_CMDLINE_LINUX_DEFAULT iommu=pt  a\"".to_string()),
        Just(
            "GRUB_CMDLINE_LINUX_DEFAULT=\"intel_iommu=off ${GRUB_CMDLINE_LINUX_DEFAULT}\""
                .to_string()
        ),
        Just("GRUB_CMDLINE_LINUX_DEFAULT=$GRUB_CMDLINE_LINUX_DEFAULT".to_string()),
        Just("GRUB_CMDLINE_LINUX_DEFAULT='b a'".to_string()),
        Just("GRUB_CMDLINE_LINUX_DEFAULT=".to_string()),
        Just("GRUB_TIMEOUT=5".to_string()),
        texty(),
    ];
    prop_oneof![
        texty(),
        proptest::collection::vec(line, 0..4).prop_map(|l| l.join("\n")),
    ]
}

/// `edit` twice on the same document, then once more on the re-parsed text: only the first may
/// change anything.
fn idempotent<D, R: PartialEq + std::fmt::Debug + Copy>(
    s: &str,
    parse: impl Fn(&str) -> D,
    render: impl Fn(&D) -> String,
    edit: impl Fn(&mut D) -> R,
    unchanged: R,
) -> Result<(), TestCaseError> {
    let mut d = parse(s);
    let first = edit(&mut d);
    let once = render(&d);
    if first == unchanged {
        prop_assert_eq!(&once, s);
    }
    prop_assert_eq!(edit(&mut d), unchanged);
    prop_assert_eq!(&render(&d), &once);
    let mut again = parse(&once);
    prop_assert_eq!(edit(&mut again), unchanged);
    prop_assert_eq!(&render(&again), &once);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_document_round_trips(s in texty()) {
        prop_assert_eq!(Cmdline::parse(&s).render(), s.clone());
        prop_assert_eq!(GrubDefault::parse(&s).render(), s.clone());
        prop_assert_eq!(KernelCmdlineFile::parse(&s).render(), s.clone());
        prop_assert_eq!(ModulesFile::parse(&s).render(), s.clone());
        prop_assert_eq!(ModprobeConf::parse(&s).render(), s.clone());
    }

    #[test]
    fn cmdline_edits_are_idempotent(s in texty(), k in key(), v in value(), item in "[a-c:]{0,3}") {
        let v = v.as_deref();
        idempotent(&s, Cmdline::parse, Cmdline::render, |c| c.set(&k, v), false)?;
        idempotent(&s, Cmdline::parse, Cmdline::render, |c| c.remove(&k), false)?;
        idempotent(&s, Cmdline::parse, Cmdline::render, |c| c.add_list_item(&k, &item), false)?;
        idempotent(&s, Cmdline::parse, Cmdline::render, |c| c.remove_list_item(&k, &item), false)?;
    }

    #[test]
    fn set_then_get_agree(s in texty(), k in key(), v in value()) {
        let mut c = Cmdline::parse(&s);
        if c.set(&k, v.as_deref()) {
            let again = Cmdline::parse(&c.render());
            prop_assert_eq!(again.get(&k), Some(v.as_deref()));
        }
    }

    #[test]
    fn grub_edits_are_idempotent(s in texty(), k in key(), v in value()) {
        let v = v.as_deref();
        // An edit that fails (an assignment not understood, a value that cannot be quoted)
        // changes nothing, and fails again.
        let set = |g: &mut GrubDefault| g.edit_cmdline_linux_default(|c| { c.set(&k, v); }).unwrap_or(false);
        idempotent(&s, GrubDefault::parse, GrubDefault::render, set, false)?;
        let rm = |g: &mut GrubDefault| g.edit_cmdline_linux(|c| { c.remove(&k); }).unwrap_or(false);
        idempotent(&s, GrubDefault::parse, GrubDefault::render, rm, false)?;
        let mut g = GrubDefault::parse(&s);
        if matches!(g.edit_cmdline_linux_default(|c| { c.set(&k, v); }), Ok(true)) {
            let again = GrubDefault::parse(&g.render()).cmdline_linux_default();
            prop_assert_eq!(again.ok().flatten().and_then(|c| c.get(&k).map(|v| v.map(str::to_string))), Some(v.map(str::to_string)));
        }
        let add = |g: &mut GrubDefault| g.edit_cmdline_linux_default(|c| { c.add_list_item("pcie_acs_override", "id:8086:a348"); }).unwrap_or(false);
        idempotent(&s, GrubDefault::parse, GrubDefault::render, add, false)?;
    }

    #[test]
    fn grub_config_edits_are_idempotent_or_change_nothing(a in grub_file(), b in grub_file(), k in key(), v in value()) {
        let v = v.as_deref();
        let parse = |(a, b): (&str, &str)| GrubConfig::new(vec![GrubDefault::parse(a), GrubDefault::parse(b)]);
        let texts = |g: &GrubConfig| g.files().iter().map(GrubDefault::render).collect::<Vec<_>>();
        for op in 0..2 {
            let edit = |g: &mut GrubConfig| g.edit_cmdline_linux_default(|c| {
                if op == 0 { c.set(&k, v); } else { c.remove(&k); }
            });
            let mut g = parse((&a, &b));
            match edit(&mut g) {
                Err(_) => prop_assert_eq!(texts(&g), vec![a.clone(), b.clone()]),
                Ok(changed) => {
                    for (i, t) in texts(&g).iter().enumerate() {
                        prop_assert_eq!(changed.contains(&i), *t != [&a, &b][i].as_str());
                    }
                    // The value the files now give is what the edit asked for.
                    let mut want = parse((&a, &b)).cmdline_linux_default().unwrap().unwrap_or_default();
                    if op == 0 { want.set(&k, v); } else { want.remove(&k); }
                    let got = g.cmdline_linux_default().unwrap().unwrap_or_default();
                    prop_assert_eq!(got.get(&k), want.get(&k));
                    prop_assert!(edit(&mut g).unwrap().is_empty());
                    let t = texts(&g);
                    let mut again = parse((&t[0], &t[1]));
                    prop_assert!(edit(&mut again).unwrap().is_empty());
                    prop_assert_eq!(texts(&again), t);
                }
            }
        }
    }

    #[test]
    fn kernel_cmdline_edits_are_idempotent(s in texty(), k in key(), v in value()) {
        let v = v.as_deref();
        idempotent(&s, KernelCmdlineFile::parse, KernelCmdlineFile::render, |f| f.edit(|c| { c.set(&k, v); }), false)?;
        idempotent(&s, KernelCmdlineFile::parse, KernelCmdlineFile::render, |f| f.edit(|c| { c.remove(&k); }), false)?;
    }

    #[test]
    fn modules_edits_are_idempotent(s in texty(), m in "vfio[_-]pci|vfio|[a-c_ #;-]{0,3}") {
        idempotent(&s, ModulesFile::parse, ModulesFile::render, |f| f.add(&m), false)?;
        idempotent(&s, ModulesFile::parse, ModulesFile::render, |f| f.remove(&m), false)?;
    }

    #[test]
    fn modprobe_edits_are_idempotent(
        s in texty(),
        m in "vfio[_-]pci|i915|[a-c_ #\\\\-]{0,3}",
        k in key(),
        v in value(),
        ids in proptest::collection::vec("8086:3e92|8086:A348|[a-c:,\"]{0,3}", 0..3),
        text in "[a-c \\\\#\n]{0,4}",
    ) {
        let v = v.as_deref();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let (p, r) = (ModprobeConf::parse, ModprobeConf::render);
        idempotent(&s, p, r, |c| c.add_blacklist(&m), false)?;
        idempotent(&s, p, r, |c| c.remove_blacklist(&m), false)?;
        idempotent(&s, p, r, |c| c.set_option(&m, &k, v), false)?;
        idempotent(&s, p, r, |c| c.merge_ids(&m, &ids), false)?;
        idempotent(&s, p, r, |c| c.remove_ids(&m, &ids), false)?;
        idempotent(&s, p, r, |c| c.add_softdep(&m, &ids), false)?;
        idempotent(&s, p, r, |c| c.add_comment_line(&text), false)?;
    }

    #[test]
    fn modprobe_edits_mean_what_they_say(s in texty(), m in "vfio[_-]pci|i915", ids in proptest::collection::vec("8086:3e92|8086:a348|10de:1b80", 1..3)) {
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let mut c = ModprobeConf::parse(&s);
        c.add_blacklist(&m);
        c.add_softdep(&m, &["vfio-pci"]);
        let merged = c.merge_ids(&m, &ids);
        let again = ModprobeConf::parse(&c.render());
        prop_assert!(again.is_blacklisted(&m));
        prop_assert!(again.softdeps(&m).iter().any(|d| d.pre.iter().any(|p| p == "vfio-pci" || p == "vfio_pci")));
        if merged {
            let have = again.option(&m, "ids").flatten().unwrap_or_default();
            for id in &ids {
                prop_assert!(have.split(',').any(|h| h.eq_ignore_ascii_case(id)), "{} not in {}", id, have);
            }
        }
    }
}
