//! `/etc/modprobe.d/*.conf`: lossless, and the vfio-pci edits idempotent.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vfiokit_kcmdline::ModprobeConf;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let mut c = ModprobeConf::parse(s);
    assert_eq!(c.render(), s);
    for p in c.problems() {
        assert!(p.line >= 1 && p.line <= s.split('\n').count(), "{p}");
    }
    c.merge_ids("vfio-pci", &["8086:3e92"]);
    c.add_softdep("i915", &["vfio-pci"]);
    c.add_blacklist("i915");
    let once = c.render();
    let mut again = ModprobeConf::parse(&once);
    assert!(!again.merge_ids("vfio-pci", &["8086:3e92"]));
    assert!(!again.add_softdep("i915", &["vfio-pci"]));
    assert!(!again.add_blacklist("i915"));
    assert_eq!(again.render(), once);
});
