//! The dozen bytes of a PE/COFF header this crate needs: machine and subsystem.

use serde::Serialize;

/// `IMAGE_FILE_MACHINE_*` values EFI uses.
pub mod machine {
    /// IA-32.
    pub const IA32: u16 = 0x014C;
    /// Itanium.
    pub const IA64: u16 = 0x0200;
    /// EFI Byte Code.
    pub const EBC: u16 = 0x0EBC;
    /// x86-64.
    pub const X64: u16 = 0x8664;
    /// ARM (Thumb-2).
    pub const ARM: u16 = 0x01C2;
    /// AArch64.
    pub const AARCH64: u16 = 0xAA64;
}

/// PE subsystems of EFI images.
pub mod subsystem {
    /// EFI application (OVMF does not load these from option ROMs).
    pub const APPLICATION: u16 = 10;
    /// Boot-services driver.
    pub const BOOT_SERVICE_DRIVER: u16 = 11;
    /// Runtime driver.
    pub const RUNTIME_DRIVER: u16 = 12;
}

/// Machine name as rom-parser prints it (`X64`, `IA-32`, …), or `Unknown (…)`.
pub fn machine_name(m: u16) -> String {
    match m {
        machine::IA32 => "IA-32".into(),
        machine::IA64 => "Itanium".into(),
        machine::EBC => "EFI Byte Code".into(),
        machine::X64 => "X64".into(),
        machine::ARM => "ARM".into(),
        machine::AARCH64 => "ARM 64-bit".into(),
        other => format!("Unknown ({other:x})"),
    }
}

/// Subsystem name as rom-parser prints it (`Boot`, `Runtime`), or `Unknown (…)`.
pub fn subsystem_name(s: u16) -> String {
    match s {
        subsystem::BOOT_SERVICE_DRIVER => "Boot".into(),
        subsystem::RUNTIME_DRIVER => "Runtime".into(),
        subsystem::APPLICATION => "Application".into(),
        other => format!("Unknown ({other:x})"),
    }
}

/// What a PE32/PE32+ header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PeInfo {
    /// `FileHeader.Machine`.
    pub machine: u16,
    /// `OptionalHeader.Subsystem`.
    pub subsystem: u16,
    /// PE32+ (optional header magic 0x20b) rather than PE32 (0x10b).
    pub pe32_plus: bool,
}

/// Reads the PE header of an EFI image the way EfiRom's `CheckPE32File` does: `MZ`, `e_lfanew`,
/// `PE\0\0`, machine, optional header magic and subsystem. The error says what is missing, with
/// the offset inside `data`.
pub fn pe_info(data: &[u8]) -> Result<PeInfo, String> {
    let get16 = |o: usize| crate::bytes::le16(data, o);
    if data.get(..2) != Some(b"MZ") {
        return Err("no MZ (DOS) header at offset 0x0".into());
    }
    let lfanew =
        crate::bytes::le32(data, 0x3C).ok_or("DOS header ends before e_lfanew (0x3c)")? as usize;
    if data.get(lfanew..lfanew.saturating_add(4)) != Some(b"PE\0\0") {
        return Err(format!("no PE signature at e_lfanew {lfanew:#x}"));
    }
    let machine =
        get16(lfanew + 4).ok_or_else(|| format!("COFF header at {:#x} is cut off", lfanew + 4))?;
    let opt = lfanew + 24;
    let magic = get16(opt).ok_or_else(|| format!("optional header at {opt:#x} is cut off"))?;
    let pe32_plus = match magic {
        0x10B => false,
        0x20B => true,
        other => {
            return Err(format!(
                "optional header magic {other:#x} at {opt:#x} is neither PE32 (0x10b) nor PE32+ (0x20b)"
            ));
        }
    };
    let subsystem = get16(opt + 0x44)
        .ok_or_else(|| format!("optional header at {opt:#x} ends before Subsystem"))?;
    Ok(PeInfo {
        machine,
        subsystem,
        pe32_plus,
    })
}
