use std::env;
use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use phf_codegen::Map;

/* This build script contains a "parser" for the PCI ID database.
 * "Parser" is in scare-quotes because it's really a line matcher with a small amount
 * of context needed for pairing nested entities (e.g. devices) with their parents (e.g. vendors).
 */

struct CgVendor {
    id: u16,
    name: String,
    devices: Vec<CgDevice>,
}

struct CgDevice {
    id: u16,
    name: String,
    subsystems: Vec<CgSubSystem>,
}

struct CgSubSystem {
    subvendor: u16,
    subdevice: u16,
    name: String,
}

struct CgClass {
    id: u8,
    name: String,
    subclasses: Vec<CgSubclass>,
}

struct CgSubclass {
    id: u8,
    name: String,
    prog_ifs: Vec<CgProgIf>,
}

pub struct CgProgIf {
    id: u8,
    name: String,
}

#[allow(clippy::redundant_field_names)]
fn main() {
    let out_dir = env::var_os("OUT_DIR").unwrap();
    // vfiokit: the upstream build script downloads a fresh pci.ids with curl on every build.
    // Builds here are hermetic: the bundled copy is used, always.
    println!("cargo:rerun-if-changed=pciids/pci.ids");
    let src_path = Path::new("pciids/pci.ids");
    let dest_path = Path::new(&out_dir).join("pci_ids.cg.rs");
    let input = {
        let f = fs::File::open(src_path).unwrap();
        BufReader::new(f)
    };
    let mut output = {
        let f = fs::File::create(dest_path).unwrap();
        BufWriter::new(f)
    };

    // Parser state.
    let mut curr_vendor: Option<CgVendor> = None;
    let mut curr_device_id = 0u16;
    let mut curr_class: Option<CgClass> = None;
    let mut curr_subclass_id = 0u8;

    let mut vendors = Map::new();
    let mut classes = Map::new();
    let mut tables = Tables::default();

    for line in input.lines() {
        let line = line.unwrap();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }

        if let Ok((name, id)) = parser::vendor(&line) {
            // If there was a previous vendor, emit it.
            if let Some(vendor) = curr_vendor.take() {
                vendors.entry(vendor.id, &tables.vendor(&vendor));
            }

            // Set our new vendor as the current vendor.
            curr_vendor = Some(CgVendor {
                id,
                name: name.into(),
                devices: vec![],
            });
        } else if let Ok((name, id)) = parser::device(&line) {
            // We should always have a current vendor; failure here indicates a malformed input.
            let curr_vendor = curr_vendor.as_mut().unwrap();
            curr_vendor.devices.push(CgDevice {
                id,
                name: name.into(),
                subsystems: vec![],
            });
            curr_device_id = id;
        } else if let Ok((name, (subvendor, subdevice))) = parser::subsystems(&line) {
            // We should always have a current vendor; failure here indicates a malformed input.
            // Similarly, our current vendor should always have a device corresponding
            // to the current device id.
            let curr_vendor = curr_vendor.as_mut().unwrap();
            let curr_device = curr_vendor
                .devices
                .iter_mut()
                .find(|d| d.id == curr_device_id)
                .unwrap();

            curr_device.subsystems.push(CgSubSystem {
                subvendor,
                subdevice,
                name: name.into(),
            });
        } else if let Ok((name, id)) = parser::class(&line) {
            // If there was a previous class, emit it.
            if let Some(class) = curr_class.take() {
                classes.entry(class.id, &tables.class(&class));
            }

            // Set our new class as the current class.
            curr_class = Some(CgClass {
                id,
                name: name.into(),
                subclasses: vec![],
            });
        } else if let Ok((name, id)) = parser::subclass(&line) {
            // We should always have a current class; failure here indicates a malformed input.
            let curr_class = curr_class.as_mut().unwrap();
            curr_class.subclasses.push(CgSubclass {
                id,
                name: name.into(),
                prog_ifs: vec![],
            });
            curr_subclass_id = id;
        } else if let Ok((name, id)) = parser::prog_if(&line) {
            // We should always have a current class; failure here indicates a malformed input.
            // Similarly, our current class should always have a subclass corresponding
            // to the current subclass id.
            let curr_class = curr_class.as_mut().unwrap();
            let curr_subclass = curr_class
                .subclasses
                .iter_mut()
                .find(|d| d.id == curr_subclass_id)
                .unwrap();

            curr_subclass.prog_ifs.push(CgProgIf {
                id,
                name: name.into(),
            });
        } else {
            // TODO: Lots of other things that could be parsed out:
            // Language, dialect, country code, HID types, ...
            break;
        }
    }
    if let Some(vendor) = curr_vendor.take() {
        vendors.entry(vendor.id, &tables.vendor(&vendor));
    }
    if let Some(class) = curr_class.take() {
        classes.entry(class.id, &tables.class(&class));
    }

    tables.write(&mut output);
    writeln!(
        output,
        "static VENDORS: phf::Map<u16, Vendor> = {};",
        vendors.build()
    )
    .unwrap();

    writeln!(
        output,
        "static CLASSES: phf::Map<u8, Class> = {};",
        classes.build()
    )
    .unwrap();

    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=pciids/pci.ids");
}

mod parser {
    use std::num::ParseIntError;

    use nom::bytes::complete::{tag, take};
    use nom::character::complete::{hex_digit1, tab};
    use nom::combinator::{all_consuming, map_parser, map_res};
    use nom::sequence::{delimited, separated_pair, terminated};
    use nom::IResult;

    fn id<T, F>(size: usize, from_str_radix: F) -> impl Fn(&str) -> IResult<&str, T>
    where
        F: Fn(&str, u32) -> Result<T, ParseIntError>,
    {
        move |input| {
            map_res(map_parser(take(size), all_consuming(hex_digit1)), |input| {
                from_str_radix(input, 16)
            })(input)
        }
    }

    pub fn vendor(input: &str) -> IResult<&str, u16> {
        let id = id(4, u16::from_str_radix);
        terminated(id, tag("  "))(input)
    }

    pub fn device(input: &str) -> IResult<&str, u16> {
        let id = id(4, u16::from_str_radix);
        delimited(tab, id, tag("  "))(input)
    }

    pub fn subsystems(input: &str) -> IResult<&str, (u16, u16)> {
        let subvendor = id(4, u16::from_str_radix);
        let subdevice = id(4, u16::from_str_radix);
        let id = separated_pair(subvendor, tag(" "), subdevice);
        delimited(tag("\t\t"), id, tag("  "))(input)
    }

    pub fn class(input: &str) -> IResult<&str, u8> {
        let id = id(2, u8::from_str_radix);
        delimited(tag("C "), id, tag("  "))(input)
    }

    pub fn subclass(input: &str) -> IResult<&str, u8> {
        let id = id(2, u8::from_str_radix);
        delimited(tab, id, tag("  "))(input)
    }

    pub fn prog_if(input: &str) -> IResult<&str, u8> {
        let id = id(2, u8::from_str_radix);
        delimited(tag("\t\t"), id, tag("  "))(input)
    }
}

/// vfiokit: the database as flat tables without pointers (names as offsets into one string,
/// children as ranges of one array), so that the executable needs no load-time relocation for
/// it. The upstream layout (`&'static str` and slices in every entry) cost 73 000 relative
/// relocations and some 600 copied pages at every start of a position-independent executable.
#[derive(Default)]
struct Tables {
    names: String,
    devices: Vec<String>,
    subsystems: Vec<String>,
    subclasses: Vec<String>,
    prog_ifs: Vec<String>,
}

impl Tables {
    fn name(&mut self, name: &str) -> String {
        let start = self.names.len();
        self.names.push_str(name);
        format!("Name({}, {})", start, name.len())
    }

    fn vendor(&mut self, v: &CgVendor) -> String {
        let name = self.name(&v.name);
        let start = self.devices.len();
        for d in &v.devices {
            let dname = self.name(&d.name);
            let first = self.subsystems.len();
            for s in &d.subsystems {
                let sname = self.name(&s.name);
                self.subsystems.push(format!(
                    "SubSystem {{ subvendor: {}, subdevice: {}, name: {} }}",
                    s.subvendor, s.subdevice, sname
                ));
            }
            self.devices.push(format!(
                "Device {{ vendor_id: {}, id: {}, name: {}, subsystems: Span({}, {}) }}",
                v.id,
                d.id,
                dname,
                first,
                d.subsystems.len()
            ));
        }
        format!(
            "Vendor {{ id: {}, name: {}, devices: Span({}, {}) }}",
            v.id,
            name,
            start,
            v.devices.len()
        )
    }

    fn class(&mut self, c: &CgClass) -> String {
        let name = self.name(&c.name);
        let start = self.subclasses.len();
        for sc in &c.subclasses {
            let scname = self.name(&sc.name);
            let first = self.prog_ifs.len();
            for p in &sc.prog_ifs {
                let pname = self.name(&p.name);
                self.prog_ifs
                    .push(format!("ProgIf {{ id: {}, name: {} }}", p.id, pname));
            }
            self.subclasses.push(format!(
                "Subclass {{ class_id: {}, id: {}, name: {}, prog_ifs: Span({}, {}) }}",
                c.id,
                sc.id,
                scname,
                first,
                sc.prog_ifs.len()
            ));
        }
        format!(
            "Class {{ id: {}, name: {}, subclasses: Span({}, {}) }}",
            c.id,
            name,
            start,
            c.subclasses.len()
        )
    }

    fn write(&self, out: &mut impl Write) {
        writeln!(out, "static NAMES: &str = {:?};", self.names).unwrap();
        for (table, ty, rows) in [
            ("DEVICES", "Device", &self.devices),
            ("SUBSYSTEMS", "SubSystem", &self.subsystems),
            ("SUBCLASSES", "Subclass", &self.subclasses),
            ("PROG_IFS", "ProgIf", &self.prog_ifs),
        ] {
            writeln!(out, "static {}: [{}; {}] = [", table, ty, rows.len()).unwrap();
            for row in rows {
                writeln!(out, "{},", row).unwrap();
            }
            writeln!(out, "];").unwrap();
        }
    }
}
