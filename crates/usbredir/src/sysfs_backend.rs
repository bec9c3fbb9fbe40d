//! USB devices from `/sys/bus/usb/devices` under a [`SysRoot`].

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use vfiokit_pci::PciAddress;
use vfiokit_sysfs::{Confinement, SysRoot};

use crate::{Error, UsbBackend, UsbDevice, UsbId, UsbInterface, UsbScan};

/// Reads USB devices from sysfs; works on recorded hosts. This is what `inspect` uses.
#[derive(Debug, Clone)]
pub struct SysfsBackend {
    root: SysRoot,
}

impl SysfsBackend {
    /// A backend reading under `root`.
    pub fn new(root: SysRoot) -> SysfsBackend {
        SysfsBackend { root }
    }
}

/// Reads an attribute as text; bytes that are not UTF-8 (cheap devices write Latin-1 strings)
/// are replaced and reported. `None` when the file does not exist.
fn text_attr(root: &SysRoot, path: &Path, problems: &mut Vec<String>) -> Option<String> {
    match root.read_bytes_opt(path) {
        Ok(Some(bytes)) => {
            let text = String::from_utf8_lossy(&bytes);
            if let std::borrow::Cow::Owned(_) = text {
                problems.push(format!(
                    "{}: not UTF-8, shown with replacement characters",
                    path.display()
                ));
            }
            Some(text.trim_end_matches(['\n', '\r']).to_string())
        }
        Ok(None) => None,
        Err(e) => {
            problems.push(e.to_string());
            None
        }
    }
}

/// A hex attribute written without `0x` (`idVendor` `8087`, `bDeviceClass` `e0`).
fn hex_attr(root: &SysRoot, path: &Path, problems: &mut Vec<String>) -> Option<u16> {
    let text = text_attr(root, path, problems)?;
    match u16::from_str_radix(text.trim(), 16) {
        Ok(v) => Some(v),
        Err(_) => {
            problems.push(format!(
                "{}: expected a hex number, found {:?}",
                path.display(),
                text.trim()
            ));
            None
        }
    }
}

fn dec_attr(root: &SysRoot, path: &Path, problems: &mut Vec<String>) -> Option<u16> {
    let text = text_attr(root, path, problems)?;
    match text.trim().parse() {
        Ok(v) => Some(v),
        Err(_) => {
            problems.push(format!(
                "{}: expected a decimal number, found {:?}",
                path.display(),
                text.trim()
            ));
            None
        }
    }
}

/// What a USB device's `uevent` says (`usb_uevent` in the kernel's `drivers/usb/core/driver.c`):
/// `PRODUCT=idVendor/idProduct/bcdDevice` in hex, `TYPE=class/subclass/protocol` in decimal,
/// `BUSNUM=`, `DEVNUM=`. One read for five attribute files; a key missing or malformed leaves
/// its file to be read.
#[derive(Debug, Default)]
struct DeviceUevent {
    vendor: Option<u16>,
    product: Option<u16>,
    class: Option<u8>,
    busnum: Option<u16>,
    devnum: Option<u16>,
}

impl DeviceUevent {
    fn parse(text: &str) -> DeviceUevent {
        let mut u = DeviceUevent::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let mut parts = value.split('/');
            match key {
                "PRODUCT" => {
                    let mut hex = || u16::from_str_radix(parts.next()?, 16).ok();
                    (u.vendor, u.product) = (hex(), hex());
                }
                "TYPE" => u.class = parts.next().and_then(|c| c.parse().ok()),
                "BUSNUM" => u.busnum = value.parse().ok(),
                "DEVNUM" => u.devnum = value.parse().ok(),
                _ => {}
            }
        }
        u
    }
}

/// An interface's number, class, subclass and protocol from its `modalias`
/// (`usb:v…p…d…dc…dsc…dp…ic03isc01ip01in00`, as `usb_device_modalias` writes it): one read for
/// four attribute files.
fn interface_from_modalias(modalias: &str) -> Option<(u8, u8, u8, u8)> {
    let modalias = modalias.trim_end();
    if !modalias.starts_with("usb:") {
        return None;
    }
    let rest = &modalias[modalias.rfind("ic")?..];
    let take = |prefix: &str, rest: &mut &str| -> Option<u8> {
        let r = rest.strip_prefix(prefix)?;
        let v = u8::from_str_radix(r.get(..2)?, 16).ok()?;
        *rest = &r[2..];
        Some(v)
    };
    let mut rest = rest;
    let class = take("ic", &mut rest)?;
    let subclass = take("isc", &mut rest)?;
    let protocol = take("ip", &mut rest)?;
    let number = take("in", &mut rest)?;
    rest.is_empty()
        .then_some((number, class, subclass, protocol))
}

/// Real directories of `sys/bus/usb/devices/<name>` links in one `readlink` each where the
/// kernel confines the reads (or on the host's own `/`): the directory part of the link's relative
/// target is resolved below the bus directory (once per directory: a hub's devices share it) and
/// the target's last component joined onto it. Anything else is `None`: the caller resolves in
/// full.
///
/// The bus directory itself is not resolved: the confined listing that named the links just went
/// through it (so it lies inside the root), and the kernel resolves each target's directory from
/// it as a full resolution of the link would, `..` after a link included.
struct DeviceDirs<'a> {
    root: &'a SysRoot,
    bus: &'a Path,
    fast: bool,
    /// Resolved directories by the link text that leads to them (`../../../devices/…/usb1`).
    parents: HashMap<PathBuf, Option<PathBuf>>,
}

impl<'a> DeviceDirs<'a> {
    fn new(root: &'a SysRoot, bus: &'a Path) -> DeviceDirs<'a> {
        DeviceDirs {
            root,
            bus,
            fast: root.confinement() == Confinement::Kernel || root.is_host(),
            parents: HashMap::new(),
        }
    }

    fn fast(&self) -> bool {
        self.fast
    }

    fn resolve(&mut self, link: &Path) -> Option<PathBuf> {
        if !self.fast {
            return None;
        }
        let target = self.root.read_link(link).ok()??;
        if !target.is_relative() {
            return None;
        }
        let Some(Component::Normal(name)) = target.components().next_back() else {
            return None;
        };
        let parent = target.parent()?;
        let (root, bus) = (self.root, self.bus);
        let dir = self
            .parents
            .entry(parent.to_path_buf())
            .or_insert_with_key(|p| {
                let path = if p.as_os_str().is_empty() {
                    bus.to_path_buf()
                } else {
                    bus.join(p)
                };
                root.resolve(&path).ok()
            })
            .as_ref()?;
        Some(dir.join(name))
    }
}

/// The interface `name` of the device at `real` (where the kernel puts interfaces), in one read
/// where it can be: on the host's own `/` from the interface's `uevent`, which the running kernel
/// always writes ([`uevent_interface`]); elsewhere, or when that does not work, from its
/// `modalias` and `driver` link ([`modalias_interface`]): `vfiokit capture` records no interface
/// `uevent`. `None` when neither works (no such directory, a recording without `modalias`): the
/// caller reads the attribute files.
fn fast_interface(root: &SysRoot, real: &Path, name: &str) -> Option<UsbInterface> {
    let dir = real.join(name);
    root.is_host()
        .then(|| uevent_interface(root, &dir))
        .flatten()
        .or_else(|| modalias_interface(root, &dir))
}

/// The interface in `dir` from its `uevent` alone: [`interface_from_uevent`].
fn uevent_interface(root: &SysRoot, dir: &Path) -> Option<UsbInterface> {
    let bytes = root.read_bytes_opt(&dir.join("uevent")).ok()??;
    interface_from_uevent(std::str::from_utf8(&bytes).ok()?)
}

/// What an interface's `uevent` says, as the kernel writes it (`dev_uevent` in
/// `drivers/base/core.c`, `usb_if_uevent` in `drivers/usb/core/message.c`):
/// `DEVTYPE=usb_interface`, `DRIVER=usbhid` while a driver is bound (the name its `driver` link
/// ends in), and `MODALIAS=` with the same text as its `modalias` file. `None` unless it says
/// it is an interface and has a modalias that parses.
fn interface_from_uevent(text: &str) -> Option<UsbInterface> {
    let (mut interface, mut driver, mut ids) = (false, None, None);
    for line in text.lines() {
        match line.split_once('=') {
            Some(("DEVTYPE", v)) => interface = v == "usb_interface",
            Some(("DRIVER", v)) => driver = (!v.is_empty()).then(|| v.to_string()),
            Some(("MODALIAS", v)) => ids = interface_from_modalias(v),
            _ => {}
        }
    }
    let (number, class, subclass, protocol) = ids.filter(|_| interface)?;
    Some(UsbInterface {
        number,
        class,
        subclass,
        protocol,
        driver,
    })
}

/// The interface in `dir` from its `modalias` and `driver` link. `None` without a `modalias`
/// that parses.
fn modalias_interface(root: &SysRoot, dir: &Path) -> Option<UsbInterface> {
    let bytes = root.read_bytes_opt(&dir.join("modalias")).ok()??;
    let (number, class, subclass, protocol) =
        interface_from_modalias(std::str::from_utf8(&bytes).ok()?)?;
    // The confined read just went through `dir`: it lies inside the root, and its `driver`
    // link is read with one `readlink`, its target checked lexically.
    let link = dir.join("driver");
    let driver = match root.read_link(&link) {
        Ok(None) => None,
        Ok(Some(target))
            if target.is_relative()
                && vfiokit_sysfs::join_lexically(dir, &target)
                    .is_some_and(|t| root.relative(&t).is_some()) =>
        {
            Some(target.file_name()?.to_str()?.to_string())
        }
        _ => root.link_name(&link).ok().flatten(),
    };
    Some(UsbInterface {
        number,
        class,
        subclass,
        protocol,
        driver,
    })
}

/// The PCI function a USB device's real path lies under: its host controller.
fn controller_of(path: &Path) -> Option<PciAddress> {
    path.ancestors()
        .find_map(|p| p.file_name()?.to_str()?.parse().ok())
}

impl UsbBackend for SysfsBackend {
    fn devices(&self) -> Result<UsbScan, Error> {
        let root = &self.root;
        let dir = root.sys_bus_devices("usb");
        let mut scan = UsbScan::default();
        // A host without USB has no `/sys/bus/usb` at all: no devices, not an error.
        let names = root.list_opt(&dir)?;
        let mut dirs = DeviceDirs::new(root, &dir);
        for name in names
            .iter()
            .filter(|n| !n.contains(':') && !n.starts_with("usb"))
        {
            let problems = &mut scan.problems;
            let link = dir.join(name);
            // The fast directory is taken only when its `uevent` reads: a dangling link, or a
            // recording without `uevent`, is resolved in full (which reports the dangling link).
            let fast = dirs.resolve(&link).and_then(|real| {
                let bytes = root.read_bytes_opt(&real.join("uevent")).ok()??;
                let text = String::from_utf8(bytes).ok()?;
                Some((real, DeviceUevent::parse(&text)))
            });
            let (real, uevent) = match fast {
                Some(found) => found,
                None => match root.resolve(&link) {
                    Ok(r) => (r, DeviceUevent::default()),
                    Err(e) => {
                        // A device unplugged while we read leaves a dangling link.
                        problems.push(e.to_string());
                        continue;
                    }
                },
            };
            let vendor = uevent
                .vendor
                .or_else(|| hex_attr(root, &real.join("idVendor"), problems));
            let product = uevent
                .product
                .or_else(|| hex_attr(root, &real.join("idProduct"), problems));
            let (Some(vendor), Some(product)) = (vendor, product) else {
                let missing = if vendor.is_none() {
                    "idVendor"
                } else {
                    "idProduct"
                };
                problems.push(format!(
                    "{}: unreadable, device {name} skipped",
                    real.join(missing).display()
                ));
                continue;
            };
            let mut interfaces = Vec::new();
            let prefix = format!("{name}:");
            for iface in names.iter().filter(|n| n.starts_with(&prefix)) {
                if dirs.fast()
                    && let Some(i) = fast_interface(root, &real, iface)
                {
                    interfaces.push(i);
                    continue;
                }
                let Ok(ireal) = root.resolve(&dir.join(iface)) else {
                    continue;
                };
                let byte = |f: &str, problems: &mut Vec<String>| {
                    hex_attr(root, &ireal.join(f), problems).and_then(|v| u8::try_from(v).ok())
                };
                let Some(class) = byte("bInterfaceClass", problems) else {
                    continue;
                };
                interfaces.push(UsbInterface {
                    number: byte("bInterfaceNumber", problems).unwrap_or(0),
                    class,
                    subclass: byte("bInterfaceSubClass", problems).unwrap_or(0),
                    protocol: byte("bInterfaceProtocol", problems).unwrap_or(0),
                    driver: root.link_name(&ireal.join("driver")).ok().flatten(),
                });
            }
            scan.devices.push(UsbDevice {
                bus: uevent
                    .busnum
                    .or_else(|| dec_attr(root, &real.join("busnum"), problems))
                    .or_else(|| name.split('-').next()?.parse().ok())
                    .unwrap_or(0),
                port: name.clone(),
                devnum: uevent
                    .devnum
                    .or_else(|| dec_attr(root, &real.join("devnum"), problems))
                    .unwrap_or(0),
                id: UsbId { vendor, product },
                manufacturer: text_attr(root, &real.join("manufacturer"), problems),
                product: text_attr(root, &real.join("product"), problems),
                serial: text_attr(root, &real.join("serial"), problems),
                class: uevent
                    .class
                    .or_else(|| {
                        hex_attr(root, &real.join("bDeviceClass"), problems)
                            .and_then(|v| u8::try_from(v).ok())
                    })
                    .unwrap_or(0),
                speed: text_attr(root, &real.join("speed"), problems),
                interfaces,
                controller: controller_of(&real),
                sysfs_path: Some(real),
            });
        }
        scan.devices
            .sort_by(|a, b| (a.bus, &a.port).cmp(&(b.bus, &b.port)));
        Ok(scan)
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;

    use super::*;

    const USB1: &str = "sys/devices/pci0000:00/0000:00:14.0/usb1";

    /// Interfaces `1-1:1.0` (bound to `usbhid`) and `1-1:1.1` (unbound) with their `modalias`,
    /// `driver` link and a `uevent` as the running kernel writes it.
    fn interfaces_with_uevents(base: &Path) -> Vec<PathBuf> {
        fs::create_dir_all(base.join("sys/bus/usb/drivers/usbhid")).unwrap();
        let mut dirs = Vec::new();
        for (n, driver) in [(0, Some("usbhid")), (1, None)] {
            let dir = base.join(USB1).join(format!("1-1/1-1:1.{n}"));
            fs::create_dir_all(&dir).unwrap();
            let protocol = n + 1;
            let modalias =
                format!("usb:v062Ap4101d0110dc00dsc00dp00ic03isc01ip{protocol:02X}in{n:02X}");
            fs::write(dir.join("modalias"), format!("{modalias}\n")).unwrap();
            let mut uevent = String::from("DEVTYPE=usb_interface\n");
            if let Some(d) = driver {
                symlink(
                    format!("../../../../../../bus/usb/drivers/{d}"),
                    dir.join("driver"),
                )
                .unwrap();
                uevent.push_str(&format!("DRIVER={d}\n"));
            }
            uevent.push_str(&format!(
                "PRODUCT=62a/4101/110\nTYPE=0/0/0\nINTERFACE=3/1/{protocol}\nMODALIAS={modalias}\n"
            ));
            fs::write(dir.join("uevent"), uevent).unwrap();
            dirs.push(dir);
        }
        dirs
    }

    #[test]
    fn an_interface_uevent_gives_what_its_modalias_and_driver_link_give() {
        let tmp = vfiokit_fakesys::scratch_dir().unwrap();
        let dirs = interfaces_with_uevents(tmp.path());
        for confinement in [Confinement::Kernel, Confinement::Walk] {
            let root = SysRoot::with_confinement(tmp.path(), confinement).unwrap();
            let found: Vec<_> = dirs
                .iter()
                .map(|dir| {
                    let from_uevent = uevent_interface(&root, dir);
                    assert_eq!(from_uevent, modalias_interface(&root, dir), "{dir:?}");
                    from_uevent.unwrap()
                })
                .collect();
            assert_eq!(
                found
                    .iter()
                    .map(|i| (
                        i.number,
                        i.class,
                        i.subclass,
                        i.protocol,
                        i.driver.as_deref()
                    ))
                    .collect::<Vec<_>>(),
                [(0, 3, 1, 1, Some("usbhid")), (1, 3, 1, 2, None)]
            );
        }
    }

    #[test]
    fn only_an_interface_uevent_with_a_modalias_names_an_interface() {
        let modalias = "MODALIAS=usb:v062Ap4101d0110dc00dsc00dp00ic03isc01ip01in00";
        let iface = format!("DEVTYPE=usb_interface\n{modalias}\n");
        assert!(interface_from_uevent(&iface).is_some());
        // A device's own `uevent`, one without its type, one without a modalias.
        for text in [
            format!("DEVTYPE=usb_device\nDRIVER=usb\n{modalias}\n"),
            format!("DRIVER=usbhid\n{modalias}\n"),
            "DEVTYPE=usb_interface\nDRIVER=usbhid\nINTERFACE=3/1/1\n".to_string(),
            "DEVTYPE=usb_interface\nMODALIAS=usb:v062Ap4101d0110dc00dsc00dp00\n".to_string(),
        ] {
            assert_eq!(interface_from_uevent(&text), None, "{text}");
        }
    }

    /// Device links are resolved as the kernel resolves them, whatever lies on the way: a bus
    /// directory or a root hub that is itself a link, and `..` after a link (which climbs from
    /// the link's target, not lexically). The user-space walk resolves every link in full.
    #[test]
    fn device_links_resolve_as_the_walk_resolves_them() {
        for relink_hub in [false, true] {
            let (dir, _) = vfiokit_fakesys::copy_recorded("elitedesk-800-g4/fresh").unwrap();
            let base = dir.path();
            // The bus directory renamed and linked back.
            let bus = base.join("sys/bus/usb/devs");
            fs::rename(base.join("sys/bus/usb/devices"), &bus).unwrap();
            symlink("devs", base.join("sys/bus/usb/devices")).unwrap();
            // `1-14` through a link to `1-1` and `..` after it: `usb1/usb1/1-14`, not there.
            let ctl = base.join("sys/devices/pci0000:00/0000:00:14.0");
            symlink("usb1/1-1", ctl.join("alias")).unwrap();
            fs::remove_file(bus.join("1-14")).unwrap();
            symlink(
                "../../../devices/pci0000:00/0000:00:14.0/alias/../usb1/1-14",
                bus.join("1-14"),
            )
            .unwrap();
            let hub = if relink_hub {
                fs::rename(ctl.join("usb1"), ctl.join("usb1-real")).unwrap();
                symlink("usb1-real", ctl.join("usb1")).unwrap();
                "usb1-real"
            } else {
                "usb1"
            };
            let scan = |confinement| {
                let root = SysRoot::with_confinement(base, confinement).unwrap();
                SysfsBackend::new(root).devices().unwrap()
            };
            let (kernel, walk) = (scan(Confinement::Kernel), scan(Confinement::Walk));
            assert_eq!(kernel.devices, walk.devices, "{hub}");
            assert_eq!(kernel.problems, walk.problems, "{hub}");
            let paths: Vec<_> = kernel.devices.iter().map(|d| &d.sysfs_path).collect();
            assert_eq!(
                paths,
                [&Some(ctl.canonicalize().unwrap().join(hub).join("1-1"))]
            );
            let problems = kernel.problems.join("\n");
            assert!(problems.contains("devices/1-14"), "{problems}");
        }
    }
}
