//! `/etc/modules`: lossless, and adding a module idempotent.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vfiokit_kcmdline::ModulesFile;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let mut m = ModulesFile::parse(s);
    assert_eq!(m.render(), s);
    m.add("vfio_pci");
    let once = m.render();
    let mut again = ModulesFile::parse(&once);
    assert!(again.contains("vfio_pci"));
    assert!(!again.add("vfio_pci"));
});
