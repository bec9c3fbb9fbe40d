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
    BuildOptions, Check, Error, GOP_ALONE, Input, Rom, Volume, build, check, file_body, gop_rom,
    graphics_in, listing, rom_parser_lines, text, volumes,
};

use crate::Common;

/// `vfiokit vbios …`.
#[derive(Debug, clap::Subcommand)]
pub enum VbiosCommand {
    /// Parse and verify an option ROM: every image, what OVMF and SeaBIOS would load. Exit 3 when
    /// it is malformed or (with --device) would not load.
    Check(CheckArgs),
    /// Build a ROM from EFI drivers (`.efi`, PE32/PE32+) and legacy images (`55 AA`), in order,
    /// byte for byte as EDK2's EfiRom (uncompressed).
    Build(BuildArgs),
    /// Find firmware volumes in a vendor firmware image and list them, write one file, write the
    /// GOP/VBT/VBIOS, or go straight to a verified ROM for a device.
    Extract(ExtractArgs),
}

/// `vbios check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The ROM file.
    file: PathBuf,
    /// The device the ROM is for (`8086:3e92`).
    #[arg(long, value_name = "VID:DID")]
    device: Option<vfiokit_pci::PciId>,
    /// Whose verdict decides the exit code.
    #[arg(long, value_name = "FIRMWARE", default_value = "ovmf", value_parser = ["ovmf", "seabios"])]
    firmware: String,
    /// Also print what awilliam's rom-parser prints for this file.
    #[arg(long)]
    rom_parser: bool,
}

/// `vbios build`.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
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
}

/// `vbios extract`.
#[derive(Debug, clap::Args)]
pub struct ExtractArgs {
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
    device: Option<vfiokit_pci::PciId>,
    /// Write a verified ROM holding the extracted GOP (after any --efi drivers).
    #[arg(long, value_name = "OUT", requires = "device")]
    rom: Option<PathBuf>,
    /// EFI drivers to put before the GOP in the ROM (IgdAssignmentDxe.efi, PlatformGopPolicy.efi).
    #[arg(long = "efi", value_name = "FILE")]
    efi: Vec<PathBuf>,
}

/// Runs a `vbios` subcommand.
pub fn run(common: &Common, cmd: VbiosCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        VbiosCommand::Check(a) => check_cmd(common, a),
        VbiosCommand::Build(a) => build_cmd(common, a),
        VbiosCommand::Extract(a) => extract(common, a),
    }
}

fn check_cmd(common: &Common, a: CheckArgs) -> anyhow::Result<ExitCode> {
    let device = a.device.map(|id| (id.vendor.0, id.device.0));
    let data = read(&a.file)?;
    if a.rom_parser && !common.json {
        print_lines(rom_parser_lines(&data).0);
        println!();
    }
    let (rom, verdict, ok) = match check(&data, device, a.firmware.parse()?) {
        Check::Parsed { rom, verdict, ok } => (rom, verdict, ok),
        bad => {
            return Ok(report_error(
                common,
                &a.file,
                &bad.problem().unwrap_or_default(),
            ));
        }
    };
    let name = a.file.display().to_string();
    let id = device.map(|(v, d)| format!("{v:04x}:{d:04x}"));
    let value = json!({ "file": name, "ok": ok, "device": id, "rom": rom, "verdict": verdict });
    render(common, &value, || text::rom(&name, &rom, &verdict, device))?;
    Ok(ExitCode::from(if ok { 0 } else { 3 }))
}

fn build_cmd(common: &Common, a: BuildArgs) -> anyhow::Result<ExitCode> {
    let (class, revision) = (a.class.as_deref(), a.revision.as_deref());
    let mut options = BuildOptions::parse(&a.vendor, &a.devices, class, revision)?;
    (options.no_last, options.pci23) = (a.no_last, a.pci23);
    let mut inputs = Vec::new();
    for f in &a.files {
        if *f == a.output {
            bail!("input and output are the same file: {}", f.display());
        }
        inputs.push(Input::from_bytes(f.display().to_string(), read(f)?)?);
    }
    let rom = build(&options, &inputs)?;
    write(&a.output, &rom)?;
    let parsed = Rom::parse(&rom)?;
    let device = Some((options.vendor, options.devices[0]));
    let verdict = parsed.verdict(device);
    let name = a.output.display().to_string();
    let value = json!({ "output": name, "size": rom.len(), "rom": parsed, "verdict": verdict });
    render(common, &value, || {
        text::rom(&name, &parsed, &verdict, device)
    })?;
    Ok(ExitCode::SUCCESS)
}

fn extract(common: &Common, a: ExtractArgs) -> anyhow::Result<ExitCode> {
    let vols = match volumes(&read(&a.firmware)?) {
        Ok(v) => v,
        Err(e) => return Ok(report_error(common, &a.firmware, &e.to_string())),
    };
    if let Some(g) = a.guid {
        let guid: vfiokit_vbios::Guid = g.parse()?;
        let Some(out) = a.output else {
            bail!("--guid needs -o FILE");
        };
        let body = file_body(&vols, guid)?;
        write(&out, &body.bytes)?;
        let (what, size, name) = (body.what, body.bytes.len(), out.display().to_string());
        if common.json {
            println!(
                "{}",
                json!({ "guid": guid, "output": name, "what": what, "size": size })
            );
        } else {
            println!("{guid}: wrote {what} ({size} bytes) to {name}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let (Some(device), Some(rom)) = (a.device, a.rom) {
        return extract_rom(
            common,
            &vols,
            (device.vendor.0, device.device.0),
            &a.efi,
            &rom,
        );
    }
    if let Some(dir) = a.output {
        return extract_dir(common, &vols, &dir);
    }
    let l = listing(&vols);
    render(common, &l, || text::listing(&l))?;
    Ok(ExitCode::from(if l.errors.is_empty() { 0 } else { 3 }))
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

fn print_lines(lines: Vec<String>) {
    for l in lines {
        println!("{l}");
    }
}

/// Prints `value` as pretty JSON (keys sorted, as `serde_json::Value` keeps them) with --json,
/// otherwise the lines `text` makes.
fn render<T: serde::Serialize>(
    common: &Common,
    value: &T,
    text: impl FnOnce() -> Vec<String>,
) -> anyhow::Result<()> {
    if common.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::to_value(value)?)?
        );
    } else {
        print_lines(text());
    }
    Ok(())
}

/// Says why `file` is no good, on one line (or a JSON object), and gives exit code 3.
fn report_error(common: &Common, file: &Path, message: &str) -> ExitCode {
    if common.json {
        let file = file.display().to_string();
        println!("{}", json!({ "file": file, "ok": false, "error": message }));
    } else {
        println!("{}: {message}", file.display());
    }
    ExitCode::from(3)
}

fn extract_dir(common: &Common, vols: &[Volume], dir: &Path) -> anyhow::Result<ExitCode> {
    let g = graphics_in(vols);
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = Vec::new();
    for (name, part) in g.files() {
        let path = dir.join(name);
        write(&path, &part.bytes)?;
        written.push(path.display().to_string());
    }
    let report = json!({ "written": written, "graphics": g });
    let pretty = serde_json::to_string_pretty(&report)?;
    write(&dir.join("report.json"), pretty.as_bytes())?;
    render(common, &report, || {
        let mut lines = text::graphics(&g);
        lines.extend(written.iter().map(|w| format!("wrote {w}")));
        lines
    })?;
    Ok(ExitCode::from(if written.is_empty() { 3 } else { 0 }))
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
        let no_gop = "no Intel GOP driver found in the firmware";
        return Ok(report_error(common, out, no_gop));
    };
    let mut drivers = Vec::new();
    for f in efi {
        let (name, bytes) = (f.display().to_string(), read(f)?);
        drivers.push(Input::Efi { name, bytes });
    }
    let r = match gop_rom(gop, vendor, device, drivers) {
        Err(e @ Error::Unloadable(_)) => return Ok(report_error(common, out, &e.to_string())),
        r => r?,
    };
    write(out, &r.bytes)?;
    let notes = Vec::from_iter(
        r.gop_alone
            .then(|| format!("{GOP_ALONE}; pass them with --efi")),
    );
    let name = out.display().to_string();
    let value =
        json!({ "output": name, "gop": gop, "rom": r.rom, "verdict": r.verdict, "notes": notes });
    render(common, &value, || {
        let mut lines = vec![text::gop(gop)];
        lines.extend(text::rom(&name, &r.rom, &r.verdict, Some((vendor, device))));
        lines.extend(notes.iter().map(|n| format!("note: {n}")));
        lines
    })?;
    Ok(ExitCode::SUCCESS)
}
