//! Reading a host's PCI functions (`vfiokit_pci::scan`) at 14 (the recorded EliteDesk), 1 000 and
//! 10 000 functions (generated servers in memory-backed scratch space). See docs/PERFORMANCE.md.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use vfiokit_fakesys::{generate, testdata_dir, write_scratch};
use vfiokit_sysfs::SysRoot;

/// The root for `functions`, and the directory to keep alive while it is read.
fn host_root(functions: usize) -> (Option<tempfile::TempDir>, SysRoot) {
    if functions == 14 {
        let dir = testdata_dir().join("elitedesk-800-g4/configured");
        return (None, SysRoot::new(dir).expect("recorded EliteDesk"));
    }
    let host = generate::large_host(functions, 1).expect("generate");
    let (dir, root) = write_scratch(&host).expect("write generated host");
    (Some(dir), root)
}

fn scan(c: &mut Criterion) {
    let mut group = c.benchmark_group("pci_scan");
    group.sample_size(10);
    for functions in [14usize, 1_000, 10_000] {
        let (_dir, root) = host_root(functions);
        let found = vfiokit_pci::scan(&root).expect("scan");
        assert_eq!(found.devices.len(), functions);
        group.throughput(Throughput::Elements(functions as u64));
        group.bench_with_input(BenchmarkId::from_parameter(functions), &root, |b, root| {
            b.iter(|| vfiokit_pci::scan(root).expect("scan"))
        });
    }
    group.finish();
}

fn modules(c: &mut Criterion) {
    let (_dir, root) = host_root(1_000);
    let scan = vfiokit_pci::scan(&root).expect("scan");
    let aliases = vfiokit_pci::load_module_aliases(&root)
        .expect("modules.alias")
        .expect("modules.alias present");
    c.bench_function("modules_for_1000_functions", |b| {
        b.iter(|| {
            scan.devices
                .iter()
                .filter_map(|d| d.modalias.as_deref())
                .map(|m| aliases.modules_for(m).len())
                .sum::<usize>()
        })
    });
}

criterion_group!(benches, scan, modules);
criterion_main!(benches);
