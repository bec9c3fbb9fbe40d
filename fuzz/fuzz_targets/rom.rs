//! PCI option ROMs: never a panic; every error names the offset.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vfiokit_vbios::Rom;

fuzz_target!(|data: &[u8]| {
    match Rom::parse(data) {
        Ok(rom) => {
            let _ = rom.verdict(Some((0x8086, 0x3e92)));
            let _ = rom.verdict(None);
        }
        Err(e) => assert!(e.to_string().contains("offset"), "{e}"),
    }
    let _ = vfiokit_vbios::rom_parser_lines(data);
});
