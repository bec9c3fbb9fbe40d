//! The kernel command line and `/etc/kernel/cmdline`: lossless, and edits idempotent.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vfiokit_kcmdline::{Cmdline, KernelCmdlineFile};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    assert_eq!(Cmdline::parse(s).render(), s);
    assert_eq!(KernelCmdlineFile::parse(s).render(), s);
    let mut c = Cmdline::parse(s);
    if c.set("iommu", Some("pt")) {
        let once = c.render();
        assert!(!c.set("iommu", Some("pt")));
        assert_eq!(Cmdline::parse(&once).get("iommu"), Some(Some("pt")));
    }
});
