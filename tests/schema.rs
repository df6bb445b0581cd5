use crate::harness::*;

#[test]
fn committed_schemas_match_the_code() {
    for name in ["manifest", "config", "plan", "state", "events", "approvals"] {
        let (o, _) = Test::new().args(["schema", name]).status(0).run();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("schemas/{name}.schema.json"));
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == o.stdout,
            "{} is out of date: run `cargo run -- schema {name} > schemas/{name}.schema.json`",
            path.display()
        );
    }
}

#[test]
fn examples_declare_their_schema_for_editors() {
    for f in all_files(&examples_dir()) {
        if f.extension().and_then(|e| e.to_str()) == Some("yaml") {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            assert!(text.starts_with("# yaml-language-server: $schema="), "{} lacks the $schema comment", f.display());
        }
    }
}
