//! `/etc/default/grub`: lossless, and the IOMMU edit idempotent or refused with a line.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vfiokit_kcmdline::GrubDefault;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let mut g = GrubDefault::parse(s);
    assert_eq!(g.render(), s);
    let _ = g.problems();
    match g.edit_cmdline_linux_default(|c| {
        c.set("iommu", Some("pt"));
    }) {
        Ok(true) => {
            let once = g.render();
            let mut again = GrubDefault::parse(&once);
            assert_eq!(again.edit_cmdline_linux_default(|c| {
                c.set("iommu", Some("pt"));
            }).ok(), Some(false));
        }
        Ok(false) => assert_eq!(g.render(), s),
        Err(e) => assert!(e.to_string().contains(':'), "{e}"),
    }
});
