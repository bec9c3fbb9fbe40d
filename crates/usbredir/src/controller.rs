//! What hangs off each USB controller, and what the host loses with it.

use vfiokit_pci::{ClassCode, PciAddress, PciScan};

use crate::{UsbDevice, UsbScan};

/// One USB host controller and the devices below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerReport {
    /// The controller's PCI function.
    pub controller: PciAddress,
    /// Every device below it, hubs included, sorted by port.
    pub devices: Vec<UsbDevice>,
    /// It is the host's only USB controller.
    pub only: bool,
}

impl ControllerReport {
    /// Keyboards, mice, receivers: what the host is operated with.
    pub fn inputs(&self) -> impl Iterator<Item = &UsbDevice> {
        self.devices.iter().filter(|d| d.is_input())
    }

    /// Disks and sticks.
    pub fn storage(&self) -> impl Iterator<Item = &UsbDevice> {
        self.devices.iter().filter(|d| d.is_storage())
    }

    /// Bluetooth adapters.
    pub fn bluetooth(&self) -> impl Iterator<Item = &UsbDevice> {
        self.devices.iter().filter(|d| d.is_bluetooth())
    }
}

/// Every USB controller among the PCI functions (class `0c03`), with the devices below it.
pub fn controllers(pci: &PciScan, usb: &UsbScan) -> Vec<ControllerReport> {
    let ctrls: Vec<PciAddress> = pci
        .devices
        .iter()
        .filter(|d| d.class.base_sub() == ClassCode::USB)
        .map(|d| d.address)
        .collect();
    let only = ctrls.len() == 1;
    ctrls
        .into_iter()
        .map(|controller| ControllerReport {
            controller,
            devices: usb
                .devices
                .iter()
                .filter(|d| d.controller == Some(controller))
                .cloned()
                .collect(),
            only,
        })
        .collect()
}
