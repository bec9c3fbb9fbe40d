//! `inspect`'s model (`vfiokit_iommu::Host::scan`: PCI functions, groups, IOMMU state, USB, host
//! roles) at 14 (the recorded EliteDesk), 1 000 and 10 000 functions, and the collateral of every
//! device of a 10 000-function host. See docs/PERFORMANCE.md.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use vfiokit_fakesys::{generate, testdata_dir, write_scratch};
use vfiokit_iommu::Host;
use vfiokit_sysfs::SysRoot;

/// The root for `functions`, and what to keep alive while it is read (the scratch directory).
fn host_root(functions: usize) -> (Option<Box<dyn std::any::Any>>, SysRoot) {
    if functions == 14 {
        let dir = testdata_dir().join("elitedesk-800-g4/configured");
        return (None, SysRoot::new(dir).expect("recorded EliteDesk"));
    }
    let host = generate::large_host(functions, 1).expect("generate");
    let (dir, root) = write_scratch(&host).expect("write generated host");
    (Some(Box::new(dir)), root)
}

fn host_scan(c: &mut Criterion) {
    let mut group = c.benchmark_group("host_scan");
    group.sample_size(10);
    for functions in [14usize, 1_000, 10_000] {
        let (_dir, root) = host_root(functions);
        assert_eq!(
            Host::scan(&root).expect("scan").pci.devices.len(),
            functions
        );
        group.throughput(Throughput::Elements(functions as u64));
        group.bench_with_input(BenchmarkId::from_parameter(functions), &root, |b, root| {
            b.iter(|| Host::scan(root).expect("scan"))
        });
    }
    group.finish();
}

fn collateral(c: &mut Criterion) {
    let (_dir, root) = host_root(10_000);
    let host = Host::scan(&root).expect("scan");
    let lost = |host: &Host| {
        host.pci
            .devices
            .iter()
            .filter_map(|d| host.collateral(d).ok())
            .map(|c| c.len())
            .sum::<usize>()
    };
    let sizes: Vec<usize> = host.groups.iter().map(|g| g.devices.len()).collect();
    eprintln!(
        "10 000 functions: {} groups, largest {}, {} collateral entries in all",
        sizes.len(),
        sizes.iter().max().unwrap_or(&0),
        lost(&host)
    );
    c.bench_function("collateral_every_device_10000", |b| b.iter(|| lost(&host)));
    c.bench_function("viability_every_group_10000", |b| {
        b.iter(|| {
            host.groups
                .iter()
                .map(|g| host.blockers(g).len())
                .sum::<usize>()
        })
    });
}

criterion_group!(benches, host_scan, collateral);
criterion_main!(benches);
