//! PCI option ROMs for GPU passthrough: verify them, build them from EFI drivers, and pull the
//! Intel GOP driver, VBT and legacy VBIOS out of vendor UEFI firmware.
//!
//! A PCI option ROM is a chain of images, each starting with `55 AA` and pointing (header offset
//! 0x18) at a PCI data structure (`PCIR`) that gives the vendor and device ids, class, image length
//! in 512-byte units, code type (0 legacy x86, 3 EFI) and the last-image bit. QEMU hands a ROM
//! (`romfile=` in a Proxmox `hostpciN` line) to the guest firmware: OVMF (EDK2 `PciBusDxe`) loads
//! every EFI image that is an X64 boot-services or runtime driver, ignoring the PCIR ids;
//! SeaBIOS runs the first legacy image whose PCIR vendor and device match the device, if its
//! checksum is 0. The community path to such a ROM is three Windows tools (UBU to extract the GOP
//! from a BIOS update, EDK2's `EfiRom` to wrap it, `rom-parser` to check it); this crate is all three.
//!
//! | item | does |
//! |---|---|
//! | [`Rom::parse`], [`Rom::verdict`], [`check_romfile`] | walk images by their length, check headers, PCIR 2.x/3.0, checksums, EFI header against the PE; what OVMF and SeaBIOS would load |
//! | [`check`], [`Check`], [`Firmware`] | a ROM judged for a device by the firmware that decides |
//! | [`text`] | reports as lines for people: a ROM and its verdict, firmware volumes, graphics found |
//! | [`rom_parser_lines`] | the lines `rom-parser` prints for the same file |
//! | [`parse_hex16`], [`parse_class_code`] | ids as typed: `0x8086`, `030000` (a `VID:DID` pair is `vfiokit_pci::PciId`) |
//! | [`build`], [`BuildOptions`], [`Input`] | `EfiRom -f … -i … -e … -b …`, byte for byte, uncompressed |
//! | [`volumes`], [`Volume`], [`File`], [`Section`] | firmware volumes found anywhere in a blob, FFS2/FFS3 files, sections (EFI/Tiano, LZMA, LZMA+x86, nested volumes) |
//! | [`listing`], [`file_body`] | every file of a firmware image, flat; one file's data by GUID |
//! | [`extract_graphics`], [`Graphics`], [`gop_rom`] | the GOP, VBT and VBIOS, by known GUIDs and by content; a verified ROM around the GOP |
//! | [`decompress`] | EFI/Tiano (EDK2's algorithm, reimplemented), LZMA, x86 BCJ |
//!
//! The crate is pure: bytes in, results out; no file or sysfs access. Every length and offset read
//! from input is bounds-checked, decompression output is capped ([`firmware::SECTION_LIMIT`],
//! [`firmware::TOTAL_LIMIT`]), nesting is limited ([`firmware::MAX_DEPTH`]); faults are [`Error`]s
//! that name the offset, never panics.
//!
//! ```
//! use vfiokit_vbios::{BuildOptions, Input, Rom, build, check_romfile};
//!
//! // The smallest PE32+ header EfiRom accepts: X64, boot-services driver.
//! let mut pe = vec![0u8; 0xA0];
//! pe[..2].copy_from_slice(b"MZ");
//! pe[0x3C] = 0x40;
//! pe[0x40..0x44].copy_from_slice(b"PE\0\0");
//! pe[0x44..0x46].copy_from_slice(&0x8664u16.to_le_bytes());
//! pe[0x58..0x5A].copy_from_slice(&0x20Bu16.to_le_bytes());
//! pe[0x9C] = 11;
//!
//! let rom = build(&BuildOptions::new(0x8086, 0x3e92), &[Input::Efi { name: "gop.efi".into(), bytes: pe }])?;
//! assert_eq!(rom.len(), 512);
//! assert_eq!(&rom[0x1C..0x20], b"PCIR");
//!
//! let parsed = Rom::parse(&rom)?;
//! assert_eq!(parsed.images.len(), 1);
//! let verdict = parsed.verdict(Some((0x8086, 0x3e92)));
//! assert!(verdict.ovmf.loads());
//! assert!(!verdict.seabios.loads()); // no legacy image
//! assert!(check_romfile(&rom, 0x8086, 0x3e92).is_ok());
//! assert!(check_romfile(&[0xff, 0xff], 0x8086, 0x3e92).unwrap_err().contains("got 0xffff"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod build;
mod bytes;
mod check;
pub mod decompress;
mod error;
mod extract;
pub mod firmware;
mod guid;
mod ids;
pub mod pe;
mod rom;
pub mod text;

pub use build::{BuildOptions, Input, MAX_ROM_SIZE, build};
pub use check::{Check, Firmware, check};
pub use error::Error;
pub use extract::{
    Body, FileEntry, GOP_ALONE, GopRom, Graphics, Listing, Part, extract_graphics, file_body,
    find_file, gop_rom, graphics_in, is_intel_vbios, listing,
};
pub use firmware::{File, FileState, Section, Volume, file_type_name, section_type_name, volumes};
pub use guid::{Guid, known};
pub use ids::{parse_class_code, parse_hex16};
pub use rom::{
    CODE_TYPE_EFI, CODE_TYPE_X86, DECOMPRESS_LIMIT, EFI_SIGNATURE, Header, Image, Load, Pcir, Rom,
    UNIT, Verdict, check_romfile, code_type_name, explain_rom_signature, rom_parser_lines,
};
