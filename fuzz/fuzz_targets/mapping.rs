//! Cluster mapping files (`pci.cfg`, `usb.cfg`): lossless, and setting a section idempotent.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vfiokit_vmconf::MappingFile;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let mut m = MappingFile::parse(s);
    assert_eq!(m.render(), s);
    let _ = m.sections();
    let maps = ["id=8086:3e92,node=pve1,path=0000:00:02.0".to_string()];
    if m.set_section("igpu", &maps, Some("iGPU")) {
        let once = m.render();
        let mut again = MappingFile::parse(&once);
        assert!(!again.set_section("igpu", &maps, Some("iGPU")), "{once:?}");
    }
});
