//! Explains the log text on stdin (or in the files named) as JSON, without host facts:
//! `dmesg | cargo run -p vfiokit-explain --example explain`.

use std::io::Read;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut text = String::new();
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        std::io::stdin().read_to_string(&mut text)?;
    }
    for f in files {
        text.push_str(&std::fs::read_to_string(f)?);
    }
    let report = vfiokit_explain::explain(&text, None);
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
