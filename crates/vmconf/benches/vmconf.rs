//! Parse + render of Proxmox VM configs: one large config (a long description, a pending
//! section and 200 snapshots) and a 10 000-VM cluster (`/etc/pve/nodes/*/qemu-server/*.conf`,
//! in memory). Throughput is in bytes; the target is at least 100 MB/s. See docs/PERFORMANCE.md.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vfiokit_vmconf::VmConfig;

/// The seed's VM 100, with the parts that vary between VMs taken from `vmid`.
fn vm(vmid: u32) -> String {
    format!(
        "agent: 1\n\
         args: -set device.hostpci0.addr=02.0 -set device.hostpci0.x-igd-gms=0x2 -set device.hostpci0.x-igd-opregion=on\n\
         bios: ovmf\n\
         boot: order=scsi0;net0\n\
         cores: 4\n\
         cpu: host\n\
         efidisk0: local-lvm:vm-{vmid}-disk-1,efitype=4m,pre-enrolled-keys=1,size=4M\n\
         hostpci0: 0000:00:02,legacy-igd=1,romfile=igpu-uhd630.rom\n\
         hostpci1: 0000:{:02x}:00.0,pcie=1,rombar=0\n\
         machine: pc-i440fx-9.2\n\
         memory: 8192\n\
         meta: creation-qemu=9.2.0,ctime={}\n\
         name: vm-{vmid}\n\
         net0: virtio=6E:FA:51:{:02X}:{:02X}:40,bridge=vmbr0,firewall=1\n\
         numa: 0\n\
         ostype: l26\n\
         scsi0: local-lvm:vm-{vmid}-disk-0,cache=writeback,discard=on,iothread=1,size=64G\n\
         scsihw: virtio-scsi-single\n\
         smbios1: uuid=194d50cf-8f86-4fa2-b770-{vmid:012x}\n\
         sockets: 1\n\
         tpmstate0: local-lvm:vm-{vmid}-disk-2,size=4M,version=v2.0\n\
         usb0: host=062a:4101\n\
         usb1: host=8087:0aaa,usb3=1\n\
         vga: none\n\
         vmgenid: 5a10564a-ca41-4136-93a9-{vmid:012x}\n",
        vmid % 256,
        1_748_871_264 + vmid,
        (vmid >> 8) & 0xff,
        vmid & 0xff,
    )
}

/// A config of about 300 KB: a 100-line description, the VM, a pending section and 200 snapshots.
fn large() -> String {
    let mut text = String::new();
    for i in 0..100 {
        text.push_str(&format!(
            "#line {i} of the description: GPU passthrough notes%3A see wiki\n"
        ));
    }
    text.push_str(&vm(100));
    text.push_str("\n[PENDING]\nmemory: 16384\ndelete: usb1\n");
    for s in 0..200 {
        text.push_str(&format!("\n[snap{s}]\n"));
        text.push_str(&vm(100));
        text.push_str(&format!(
            "parent: snap{}\nsnaptime: {}\n",
            s.max(1) - 1,
            1_750_000_000 + s
        ));
    }
    text
}

fn parse_render(c: &mut Criterion) {
    let text = large();
    assert_eq!(VmConfig::parse(&text).render(), text);
    let mut group = c.benchmark_group("vmconf");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("parse_render_large_config", |b| {
        b.iter(|| VmConfig::parse(&text).render())
    });
    group.bench_function("parse_set_render_large_config", |b| {
        b.iter(|| {
            let mut config = VmConfig::parse(&text);
            config.set("hostpci2", "0000:03:00.0,pcie=1");
            config.render()
        })
    });
    let cluster: Vec<String> = (100..10_100).map(vm).collect();
    let bytes: usize = cluster.iter().map(String::len).sum();
    group.throughput(Throughput::Bytes(bytes as u64));
    group.sample_size(20);
    group.bench_function("parse_render_10000_vm_cluster", |b| {
        b.iter(|| {
            cluster
                .iter()
                .map(|t| VmConfig::parse(t).render().len())
                .sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, parse_render);
criterion_main!(benches);
