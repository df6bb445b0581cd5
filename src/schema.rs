//! The JSON Schemas of the manifest, the config, the plan and the state (`kore-notify schema`,
//! `init`), generated from the Rust types.

/// Which schema.
#[derive(Copy, Clone, Debug, clap::ValueEnum)]
pub(crate) enum SchemaName {
    Manifest,
    Config,
    Plan,
    State,
    /// One line of `--events`.
    Events,
    /// The approvals file of `apply --approvals`.
    Approvals,
}

pub(crate) fn schema(name: SchemaName) -> String {
    let s = match name {
        SchemaName::Manifest => schemars::schema_for!(crate::manifest::ManifestDoc),
        SchemaName::Config => schemars::schema_for!(crate::config::ConfigDoc),
        SchemaName::Plan => schemars::schema_for!(crate::plan::PlanSet),
        SchemaName::State => schemars::schema_for!(crate::state::State),
        SchemaName::Events => crate::events::schema(),
        SchemaName::Approvals => schemars::schema_for!(crate::policy::ApprovalsFile),
    };
    let mut s = s.to_value();
    // Optional fields may be omitted, not set to null: the loaders refuse null values. Where the
    // loaders take text they take a whole number as its digits too (`- 919800000001`): so does
    // the schema, or editors would flag what kore-notify accepts.
    if matches!(name, SchemaName::Manifest | SchemaName::Config) {
        strip_null(&mut s);
        integers_as_text(&mut s);
    }
    if let serde_json::Value::Object(o) = &mut s {
        let file = match name {
            SchemaName::Manifest => "manifest",
            SchemaName::Config => "config",
            SchemaName::Plan => "plan",
            SchemaName::State => "state",
            SchemaName::Events => "events",
            SchemaName::Approvals => "approvals",
        };
        o.insert("$id".into(), schema_url(file).into());
    }
    serde_json::to_string_pretty(&s).unwrap_or_default() + "\n"
}

/// The stable address of a schema of this release: its `$id`, and what editors can point to.
pub(crate) fn schema_url(name: &str) -> String {
    format!(
        "https://raw.githubusercontent.com/kore-notify/kore-notify/v{}/schemas/{name}.schema.json",
        env!("CARGO_PKG_VERSION")
    )
}

/// `"type": "string"` without an enum becomes `["string", "integer"]`.
fn integers_as_text(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Object(o) => {
            if o.get("type").and_then(Value::as_str) == Some("string")
                && !o.contains_key("enum")
                && !o.contains_key("format")
            {
                o.insert("type".into(), serde_json::json!(["string", "integer"]));
            }
            o.values_mut().for_each(integers_as_text);
        }
        Value::Array(a) => a.iter_mut().for_each(integers_as_text),
        _ => {}
    }
}

/// Removes `null` from `type` lists and `anyOf` branches (schemars adds them for `Option`).
fn strip_null(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Object(o) => {
            if let Some(Value::Array(types)) = o.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types[0].clone();
                    o.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(branches)) = o.get_mut("anyOf") {
                branches.retain(|b| b.get("type").and_then(Value::as_str) != Some("null"));
                if branches.len() == 1
                    && let Some(Value::Object(only)) = branches.pop()
                {
                    o.remove("anyOf");
                    o.extend(only);
                }
            }
            for x in o.values_mut() {
                strip_null(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strip_null),
        _ => {}
    }
}
