//! What every command prints under `--json`: one JSON document on standard
//! output, an error included (`{"error": {...}}`), so a script parses
//! whatever happened. The documents are described in `shared/cli/output.schema.json`.

/// Prints one JSON document, indented.
pub fn print(doc: &serde_json::Value) {
    println!("{doc:#}");
}

/// The document of a command that failed before it could judge anything
/// (exit status 2).
pub fn error(message: &str) -> serde_json::Value {
    serde_json::json!({ "error": { "message": message, "exit": 2 } })
}
