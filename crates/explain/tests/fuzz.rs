//! `explain` never panics, whatever the text: arbitrary Unicode, and lines spliced from the
//! fragments the matchers and the prefix parsers look at.

use proptest::prelude::*;
use vfiokit_explain::{classify, device, explain, message, strip_time};

const FRAGMENTS: &[&str] = &[
    "[",
    "]",
    "[ ",
    "  12.3",
    "+0.1",
    "T12",
    "C0",
    "<4>",
    "Jun 03 20:35:58 ",
    "pve kernel: ",
    "2025-09-03T06:19:15.076547Z ",
    "2026-09-26T12:33:17-07",
    "kvm: ",
    "-device vfio-pci,host=",
    "0000:01:00.0",
    "01:00.0",
    "c5:00.",
    "0x",
    ":",
    ".",
    " ",
    "vfio ",
    "vfio-pci ",
    "TASK ERROR: ",
    "Request device [",
    "device=",
    "IO_PAGE_FAULT",
    "Event logged [",
    "group 1 is not viable",
    "BAR 1: can't reserve",
    "bridge window [",
    "not ready ",
    "ms after ",
    "failed to set iommu for container",
    "Operation not permitted",
    "Verify all devices in group",
    "are bound to",
    "IGD legacy mode disabled",
    "é",
    "😀",
    "\u{0}",
    "\t",
    "error : ",
    "1234: ",
];

fn spliced() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::collection::vec(prop::sample::select(FRAGMENTS), 0..12).prop_map(|v| v.concat()),
        0..8,
    )
    .prop_map(|lines| lines.join("\n"))
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let r = explain(&text, None);
        let nonblank = text.lines().filter(|l| !l.trim().is_empty()).count();
        let counted: usize = r.explained.iter().map(|e| e.count).sum();
        prop_assert!(r.unrecognized <= nonblank);
        prop_assert!(counted <= 2 * nonblank);
    }

    #[test]
    fn spliced_fragments_never_panic(text in spliced()) {
        let r = explain(&text, None);
        for e in &r.explained {
            prop_assert!(e.line >= 1 && e.count >= 1);
            if let Some(d) = &e.device {
                // `dddd:bb:dd.f`, the domain up to 8 hex digits (Intel VMD uses `10000:`).
                prop_assert!((12..=16).contains(&d.len()), "{}", d);
                prop_assert_eq!(device(d), Some(d.clone()));
            }
        }
        for line in text.lines() {
            let _ = (classify(line), device(line), message(line), strip_time(line));
        }
    }
}
