//! `vfiokit vbios check|build|extract`: option ROMs verified, built from EFI drivers, and pulled
//! out of vendor firmware. The rules live in `vfiokit-vbios`; this module reads and writes files.
//!
//! Exit codes: 0 well formed (and, with `--device`, loadable by the chosen firmware), 3 malformed
//! or not loadable, 1 I/O or bad input, 2 usage.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::json;
use vfiokit_vbios::{
    BuildOptions, Check, Firmware, Guid, Input, Rom, Volume, build, file_type_name, find_file,
    graphics_in, parse_vid_did, rom_parser_lines, text, volumes,
};

use crate::Common;

/// `vfiokit vbios …`.
#[derive(Debug, clap::Subcommand)]
pub enum VbiosCommand {
    /// Parse and verify an option ROM: every image, what OVMF and SeaBIOS would load. Exit 3 when
    /// it is malformed or (with --device) would not load.
    Check {
        /// The ROM file.
        file: PathBuf,
        /// The device the ROM is for (`8086:3e92`).
        #[arg(long, value_name = "VID:DID")]
        device: Option<String>,
        /// Whose verdict decides the exit code.
        #[arg(long, value_name = "FIRMWARE", default_value = "ovmf", value_parser = ["ovmf", "seabios"])]
        firmware: String,
        /// Also print what awilliam's rom-parser prints for this file.
        #[arg(long)]
        rom_parser: bool,
    },
    /// Build a ROM from EFI drivers (`.efi`, PE32/PE32+) and legacy images (`55 AA`), in order,
    /// byte for byte as EDK2's EfiRom (uncompressed).
    Build {
        /// PCIR vendor id, hex (`8086` or `0x8086`), as EfiRom's -f.
        #[arg(long, value_name = "VID")]
        vendor: String,
        /// PCIR device id, hex, as EfiRom's -i; repeat for a PCI 3.0 device list.
        #[arg(long = "device", value_name = "DID", required = true, num_args = 1..)]
        devices: Vec<String>,
        /// Class code, six hex digits (default 000000, as EfiRom's).
        #[arg(long, value_name = "CLASS")]
        class: Option<String>,
        /// Code revision, hex (default 0).
        #[arg(long, value_name = "REV")]
        revision: Option<String>,
        /// Leave the last-image bit off the final image (EfiRom -n).
        #[arg(long)]
        no_last: bool,
        /// PCI 2.3 data structures (EfiRom -p).
        #[arg(long)]
        pci23: bool,
        /// The ROM to write.
        #[arg(short = 'o', long, value_name = "OUT")]
        output: PathBuf,
        /// Input files: EFI drivers (`MZ`) and legacy images (`55 AA`), told apart by content.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Find firmware volumes in a vendor firmware image and list them, write one file, write the
    /// GOP/VBT/VBIOS, or go straight to a verified ROM for a device.
    Extract {
        /// The firmware image (a BIOS update `.bin`, a flash dump).
        firmware: PathBuf,
        /// List every FFS file of every volume.
        #[arg(long)]
        list: bool,
        /// Write the PE32 body (or raw data) of the file with this GUID to -o FILE.
        #[arg(long, value_name = "GUID")]
        guid: Option<String>,
        /// With --guid: the file to write; otherwise the directory for gop.efi, vbt.bin,
        /// vbios.rom and report.json.
        #[arg(short = 'o', long, value_name = "PATH")]
        output: Option<PathBuf>,
        /// The device to build a ROM for (`8086:3e92`), with --rom.
        #[arg(long, value_name = "VID:DID", requires = "rom")]
        device: Option<String>,
        /// Write a verified ROM holding the extracted GOP (after any --efi drivers).
        #[arg(long, value_name = "OUT", requires = "device")]
        rom: Option<PathBuf>,
        /// EFI drivers to put before the GOP in the ROM (IgdAssignmentDxe.efi, PlatformGopPolicy.efi).
        #[arg(long = "efi", value_name = "FILE")]
        efi: Vec<PathBuf>,
    },
}

/// Runs a `vbios` subcommand.
pub fn run(common: &Common, cmd: VbiosCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        VbiosCommand::Check {
            file,
            device,
            firmware,
            rom_parser,
        } => {
            let device = device.as_deref().map(parse_vid_did).transpose()?;
            let firmware = if firmware == "seabios" {
                Firmware::SeaBios
            } else {
                Firmware::Ovmf
            };
            check(common, &file, device, firmware, rom_parser)
        }
        VbiosCommand::Build {
            vendor,
            devices,
            class,
            revision,
            no_last,
            pci23,
            output,
            files,
        } => {
            let options = BuildOptions {
                no_last,
                pci23,
                ..BuildOptions::parse(&vendor, &devices, class.as_deref(), revision.as_deref())?
            };
            build_cmd(common, &options, &files, &output)
        }
        VbiosCommand::Extract {
            firmware,
            list,
            guid,
            output,
            device,
            rom,
            efi,
        } => {
            let data = read(&firmware)?;
            let vols = match volumes(&data) {
                Ok(v) => v,
                Err(e) => {
                    report_error(common, &firmware, &e.to_string());
                    return Ok(ExitCode::from(3));
                }
            };
            if let Some(g) = guid {
                let g: Guid = g.parse()?;
                let Some(out) = output else {
                    bail!("--guid needs -o FILE");
                };
                return extract_guid(common, &vols, g, &out);
            }
            if let (Some(device), Some(rom)) = (device, rom) {
                return extract_rom(common, &vols, parse_vid_did(&device)?, &efi, &rom);
            }
            if let Some(dir) = output {
                return extract_dir(common, &vols, &dir);
            }
            let _ = list;
            list_volumes(common, &vols)
        }
    }
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

fn report_error(common: &Common, file: &Path, message: &str) {
    if common.json {
        println!(
            "{}",
            json!({ "file": file.display().to_string(), "ok": false, "error": message })
        );
    } else {
        println!("{}: {message}", file.display());
    }
}

fn check(
    common: &Common,
    file: &Path,
    device: Option<(u16, u16)>,
    firmware: Firmware,
    rom_parser: bool,
) -> anyhow::Result<ExitCode> {
    let data = read(file)?;
    if rom_parser && !common.json {
        for line in rom_parser_lines(&data).0 {
            println!("{line}");
        }
        println!();
    }
    match vfiokit_vbios::check(&data, device, firmware) {
        Check::Malformed { error, hint } => {
            let hint = hint.map(|h| format!("\n  {h}")).unwrap_or_default();
            report_error(common, file, &format!("{error}{hint}"));
            Ok(ExitCode::from(3))
        }
        Check::Parsed { rom, verdict, ok } => {
            if common.json {
                let out = json!({
                    "file": file.display().to_string(),
                    "ok": ok,
                    "device": device.map(|(v, d)| format!("{v:04x}:{d:04x}")),
                    "rom": rom,
                    "verdict": verdict,
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                print_lines(text::rom(
                    &file.display().to_string(),
                    &rom,
                    &verdict,
                    device,
                ));
            }
            Ok(ExitCode::from(if ok { 0 } else { 3 }))
        }
    }
}

fn print_lines(lines: Vec<String>) {
    for l in lines {
        println!("{l}");
    }
}

fn build_cmd(
    common: &Common,
    options: &BuildOptions,
    files: &[PathBuf],
    output: &Path,
) -> anyhow::Result<ExitCode> {
    let mut inputs = Vec::new();
    for f in files {
        if f == output {
            bail!("input and output are the same file: {}", f.display());
        }
        inputs.push(Input::from_bytes(f.display().to_string(), read(f)?)?);
    }
    let rom = build(options, &inputs)?;
    write(output, &rom)?;
    let parsed = Rom::parse(&rom)?;
    let verdict = parsed.verdict(Some((options.vendor, options.devices[0])));
    if common.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({ "output": output.display().to_string(), "size": rom.len(), "rom": parsed, "verdict": verdict })
            )?
        );
    } else {
        let device = Some((options.vendor, options.devices[0]));
        print_lines(text::rom(
            &output.display().to_string(),
            &parsed,
            &verdict,
            device,
        ));
    }
    Ok(ExitCode::SUCCESS)
}

fn list_volumes(common: &Common, vols: &[Volume]) -> anyhow::Result<ExitCode> {
    let errors: Vec<String> = vols
        .iter()
        .flat_map(|v| v.errors())
        .map(|e| e.to_string())
        .collect();
    if common.json {
        let files: Vec<serde_json::Value> = vols
            .iter()
            .flat_map(|v| v.all_files())
            .map(|f| {
                json!({
                    "guid": f.name, "type": f.file_type, "type_name": file_type_name(f.file_type),
                    "name": f.ui_name(), "size": f.size, "pe32_size": f.pe32().map(<[u8]>::len),
                    "state": f.state, "location": f.location,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({ "volumes": vols, "files": files, "errors": errors })
            )?
        );
    } else {
        for v in vols {
            print_volume(v, 0);
        }
        for e in &errors {
            println!("error: {e}");
        }
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

fn print_volume(v: &Volume, depth: usize) {
    let pad = "  ".repeat(depth);
    println!(
        "{pad}volume {}: {:#x} bytes, file system {}{}",
        v.location,
        v.length,
        v.file_system,
        v.name.map(|n| format!(", name {n}")).unwrap_or_default()
    );
    for f in &v.files {
        println!(
            "{pad}  {} {:<16} {:<24} {:>8}{}",
            f.name,
            file_type_name(f.file_type),
            f.ui_name().unwrap_or_default(),
            f.size,
            f.pe32()
                .map(|p| format!("  PE32 {} bytes", p.len()))
                .unwrap_or_default()
        );
        for nested in f.volumes() {
            print_volume(nested, depth + 2);
        }
    }
}

fn extract_guid(
    common: &Common,
    vols: &[Volume],
    guid: Guid,
    out: &Path,
) -> anyhow::Result<ExitCode> {
    let Some(file) = find_file(vols, guid) else {
        bail!("no file {guid} in the firmware");
    };
    let (bytes, what) = match file.pe32() {
        Some(pe) => (pe.to_vec(), "PE32 body"),
        None if !file.raw.is_empty() => (file.raw.clone(), "raw data"),
        None => match file.leaves().first() {
            Some(s) => (s.data.clone(), "first section"),
            None => bail!("file {guid} has no PE32 section or data"),
        },
    };
    write(out, &bytes)?;
    if common.json {
        println!(
            "{}",
            json!({ "guid": guid, "output": out.display().to_string(), "what": what, "size": bytes.len() })
        );
    } else {
        println!(
            "{guid}: wrote {what} ({} bytes) to {}",
            bytes.len(),
            out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn extract_dir(common: &Common, vols: &[Volume], dir: &Path) -> anyhow::Result<ExitCode> {
    let g = graphics_in(vols);
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = Vec::new();
    for (list, name) in [
        (&g.gop, "gop.efi"),
        (&g.vbt, "vbt.bin"),
        (&g.vbios, "vbios.rom"),
    ] {
        if let Some(best) = list.first() {
            let path = dir.join(name);
            write(&path, &best.bytes)?;
            written.push(path.display().to_string());
        }
    }
    let report = json!({ "written": written, "graphics": g });
    write(
        &dir.join("report.json"),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    if common.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for (list, what) in [(&g.gop, "GOP"), (&g.vbt, "VBT"), (&g.vbios, "VBIOS")] {
            if list.is_empty() {
                println!("{what}: not found");
            }
            for (n, p) in list.iter().enumerate() {
                println!(
                    "{what}{}: {} bytes from file {} at {}{}; by {}",
                    if n == 0 { "" } else { " (also)" },
                    p.size,
                    p.file,
                    p.location,
                    p.label
                        .as_deref()
                        .map(|l| format!(" [{l}]"))
                        .unwrap_or_default(),
                    p.identified_by.join(", ")
                );
            }
        }
        for w in &written {
            println!("wrote {w}");
        }
    }
    Ok(if written.is_empty() {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

fn extract_rom(
    common: &Common,
    vols: &[Volume],
    (vendor, device): (u16, u16),
    efi: &[PathBuf],
    out: &Path,
) -> anyhow::Result<ExitCode> {
    let g = graphics_in(vols);
    let Some(gop) = g.gop.first() else {
        report_error(common, out, "no Intel GOP driver found in the firmware");
        return Ok(ExitCode::from(3));
    };
    let mut inputs = Vec::new();
    for f in efi {
        inputs.push(Input::Efi {
            name: f.display().to_string(),
            bytes: read(f)?,
        });
    }
    inputs.push(Input::Efi {
        name: format!("GOP from file {}", gop.file),
        bytes: gop.bytes.clone(),
    });
    let rom = build(&BuildOptions::new(vendor, device), &inputs)?;
    if let Err(reason) = vfiokit_vbios::check_romfile(&rom, vendor, device) {
        report_error(
            common,
            out,
            &format!("the built ROM would not load: {reason}"),
        );
        return Ok(ExitCode::from(3));
    }
    write(out, &rom)?;
    let parsed = Rom::parse(&rom)?;
    let verdict = parsed.verdict(Some((vendor, device)));
    let mut notes = Vec::new();
    if efi.is_empty() && vendor == 0x8086 {
        notes.push(
            "the GOP alone shows no picture in OVMF on a passed-through iGPU: it needs IgdAssignmentDxe and \
             PlatformGopPolicy (VfioIgdPkg) in the same ROM; pass them with --efi"
                .to_string(),
        );
    }
    if common.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({ "output": out.display().to_string(), "gop": gop, "rom": parsed, "verdict": verdict, "notes": notes })
            )?
        );
    } else {
        println!(
            "GOP: {} bytes from file {}{}",
            gop.size,
            gop.file,
            gop.label
                .as_deref()
                .map(|l| format!(" [{l}]"))
                .unwrap_or_default()
        );
        let device = Some((vendor, device));
        print_lines(text::rom(
            &out.display().to_string(),
            &parsed,
            &verdict,
            device,
        ));
        for n in notes {
            println!("note: {n}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
