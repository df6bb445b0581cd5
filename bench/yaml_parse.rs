//! YAML parse speed on one core, to compare with the parser's own event stream:
//!
//!     cargo run --release --example bench-yaml -- [--full|--serde|--events|--events-no-comments] FILE…
//!
//! Reads the files, then parses each on this thread: by default into the positioned tree
//! (`yaml::parse_documents`, what `plan` does: the fast path for files in the plain block shape);
//! `--full` through the full event parser only; `--serde` through the old serde path;
//! `--events` only iterates granit-parser's events (the floor; `--events-no-comments` without
//! comment events). Prints MB/s of YAML per core.

use std::time::Instant;

// The allocator the kore-notify binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.iter().find(|a| a.starts_with("--")).cloned().unwrap_or_default();
    let texts: Vec<String> =
        args.iter().filter(|a| !a.starts_with("--")).map(std::fs::read_to_string).collect::<Result<_, _>>()?;
    let bytes: usize = texts.iter().map(String::len).sum();
    let start = Instant::now();
    let mut nodes = 0usize;
    for t in &texts {
        nodes += match mode.as_str() {
            "--events" => granit_parser::Parser::new_from_str(t).map(|e| e.map(|_| 1)).sum::<Result<usize, _>>()?,
            "--events-no-comments" => {
                let mut o = granit_parser::Options::default();
                o.emit_comments = false;
                granit_parser::Parser::new_from_str_with_options(t, o)
                    .map(|e| e.map(|_| 1))
                    .sum::<Result<usize, _>>()?
            }
            "--serde" => kore_notify::yaml::serde_path::parse_documents(t).map_err(|e| e.message)?.len(),
            "--full" => kore_notify::yaml::parse_documents_full(t).map_err(|e| e.message)?.len(),
            _ => kore_notify::yaml::parse_documents(t).map_err(|e| e.message)?.len(),
        };
    }
    let secs = start.elapsed().as_secs_f64();
    let mode = if mode.is_empty() { "tree" } else { mode.trim_start_matches('-') };
    println!(
        "{mode}: {:.1} MB in {secs:.2} s = {:.1} MB/s on one core ({nodes} documents or events)",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / secs
    );
    Ok(())
}
