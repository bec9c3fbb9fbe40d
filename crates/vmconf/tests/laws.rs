//! The laws, on arbitrary text: `render(parse(s)) == s`; `set` then `get` agrees (also after a
//! re-parse) and is idempotent; `remove` then `get` is `None`.

use proptest::prelude::*;
use vfiokit_vmconf::{
    LintOptions, MappingFile, PropertyString, VmConfig, legacy_igd_verdict, lint,
};

/// Text made of what the parser cares about, so the interesting cases come up often.
fn texty() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ \t\r\n#:\\[\\]a-c0-2=,;%_.é€-]{0,60}",
        "(\\[(special:|pending|PENDING|[a-zé]{0,3})(é|cloudinit|fleecing|€|[a-c]{0,9})\\] ?\n|[a-c]{1,3}:é?\n){0,6}",
        "((agent|args|boot|hostpci0|hostpci10|hostpci2|usb5|vga|machine|description|delete|snapstate|lxc.a|A|#x|\\[PENDING\\]|\\[snap\\]|\\[special:cloudinit\\]|\\[a b\\])(: ?|:)(1|none|q35|0000:00:02.0,legacy-igd=1|prepare| |  |x y)?(\r)?\n){0,12}",
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("args".to_string()),
        Just("hostpci0".to_string()),
        Just("hostpci10".to_string()),
        Just("vga".to_string()),
        Just("boot".to_string()),
        Just("a".to_string()),
        "[a-c_:A-]{0,4}[0-9]{0,2}",
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("none".to_string()),
        Just("1".to_string()),
        Just(" ".to_string()),
        Just("x snapstate: delete".to_string()),
        "[a-c ,=\r\n:#]{0,6}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn documents_round_trip(s in texty()) {
        prop_assert_eq!(VmConfig::parse(&s).render(), s.clone());
        prop_assert_eq!(MappingFile::parse(&s).render(), s.clone());
        prop_assert_eq!(PropertyString::parse(&s, Some("host")).render(), s.clone());
        // Nothing panics on any text.
        let c = VmConfig::parse(&s);
        let _ = lint(&c, &LintOptions { vmid: Some(1), qemu: Some((9, 2)) });
        let _ = legacy_igd_verdict(&c);
        let _ = c.description();
        let _ = MappingFile::parse(&s).sections();
    }

    #[test]
    fn set_get_remove(s in texty(), k in key(), v in value()) {
        let mut c = VmConfig::parse(&s);
        let before = c.render();
        let changed = c.set(&k, &v);
        let once = c.render();
        if changed {
            prop_assert_ne!(&once, &before);
            prop_assert_eq!(c.get(&k), Some(v.as_str()));
            let reparsed = VmConfig::parse(&once);
            prop_assert_eq!(reparsed.get(&k), Some(v.as_str()));
        } else {
            prop_assert_eq!(&once, &before);
        }
        // Idempotent, on the same document and on the re-parsed text.
        prop_assert!(!c.set(&k, &v));
        prop_assert_eq!(&c.render(), &once);
        let mut again = VmConfig::parse(&once);
        prop_assert!(!again.set(&k, &v));
        // Other lines are untouched: at most one line was added or rewritten.
        let old: Vec<&str> = before.split('\n').collect();
        let new: Vec<&str> = once.split('\n').collect();
        prop_assert!(new.len() == old.len() || new.len() == old.len() + 1);
        let removed = c.remove(&k);
        prop_assert_eq!(c.get(&k), None);
        let reparsed = VmConfig::parse(&c.render());
        prop_assert_eq!(reparsed.get(&k), None);
        prop_assert!(!c.remove(&k));
        if !removed {
            prop_assert_eq!(c.render(), once);
        }
    }

    #[test]
    fn property_string_edits(s in "[a-c=,; ]{0,12}", k in "[a-c]{1,2}", v in "[a-c;=]{1,3}") {
        let mut p = PropertyString::parse(&s, Some("a"));
        let changed = p.set(&k, &v);
        let once = p.render();
        if changed || s.is_empty() {
            let reparsed = PropertyString::parse(&once, Some("a"));
            prop_assert_eq!(reparsed.get(&k), Some(v.as_str()));
        }
        prop_assert!(!p.set(&k, &v));
        p.remove(&k);
        prop_assert_eq!(p.get(&k), None);
        prop_assert!(!p.remove(&k));
    }
}

#[test]
fn huge_files_are_linear_enough() {
    let mut text = String::new();
    for i in 0..200_000 {
        text.push_str(&format!("unused{}: local:vm-100-disk-{i}\n", i % 256));
    }
    let start = std::time::Instant::now();
    let mut c = VmConfig::parse(&text);
    assert!(c.set("vga", "none"));
    let _ = lint(&c, &LintOptions::default());
    assert_eq!(c.render().len(), text.len() + "vga: none\n".len());
    assert!(start.elapsed().as_secs() < 20, "{:?}", start.elapsed());
}
