//! UEFI firmware volumes: never a panic, bounded output; volume errors name the offset.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match vfiokit_vbios::volumes(data) {
        Ok(vols) => {
            let _ = vfiokit_vbios::graphics_in(&vols);
        }
        Err(e) => {
            let text = e.to_string();
            assert!(text.contains("offset") || text.contains("no firmware volume"), "{text}");
        }
    }
});
