//! Embedding vfiokit: plan the seed's host setup, show it, apply it to a copy, verify, undo.
//!
//! `cargo run -p vfiokit-setup --example embed`

use vfiokit_plan::{SystemRunner, apply, undo};
use vfiokit_setup::{HostFacts, audit, host};
use vfiokit_sysfs::SysRoot;

/// Runs the example (also from the test suite, `tests/embed.rs`).
pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A copy of the recorded EliteDesk 800 G4, so that nothing real is touched.
    let (_dir, root): (_, SysRoot) = vfiokit_fakesys::copy_recorded("elitedesk-800-g4/fresh")?;

    // Facts are read once; every planner and check is a pure function of them.
    let facts = HostFacts::gather(&root)?;
    let request = host::Request {
        devices: vec!["00:02.0".parse()?, "00:14.3".parse()?],
        force_collateral: vec![],
    };
    let planned = match host::plan(&facts, &request)? {
        Ok(planned) => planned,
        Err(refusal) => return Err(refusal.to_string().into()),
    };
    print!("{}", planned.plan.render());

    // Apply: digest re-check, journal first, atomic replace; commands are only recorded off `/`.
    let journal = apply(&root, &planned.plan, "embed example", &root, &SystemRunner)?;
    println!("applied {} file(s)", journal.files.len());

    // Verify the result with the same rule table `vfiokit verify` runs.
    for finding in audit(&HostFacts::gather(&root)?, &[]) {
        println!("{}: {}", finding.check, finding.message);
    }

    // And put everything back, byte for byte.
    let undone = undo(&root, &root, &SystemRunner)?;
    println!("undone: {} file(s) restored", undone.files.len());
    Ok(())
}
