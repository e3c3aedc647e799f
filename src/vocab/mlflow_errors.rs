//! MLflow's own error bodies, byte for byte, for the answers the gateway must give exactly as
//! MLflow would (an object of another tenant answered like an absent one). A leaf.

/// A JSON string as Python's `json.dumps` writes it (ASCII only, `\uXXXX` escapes), so a
/// replaced answer is byte-identical to MLflow's own.
pub fn python_json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// MLflow 3.17's error body for an absent object, with its `message`.
pub fn not_found_body(message: &str) -> Vec<u8> {
    format!(
        "{{\"error_code\": \"RESOURCE_DOES_NOT_EXIST\", \"message\": {}, \"sqlstate\": \"KAM00\", \"error_class\": \"RESOURCE_NOT_FOUND\"}}",
        python_json_string(message)
    )
    .into_bytes()
}

/// MLflow 3.17's body for `experiments/get-by-name` of a name that does not exist.
pub fn experiment_name_not_found(name: &str) -> Vec<u8> {
    not_found_body(&format!("Could not find experiment with name '{name}'"))
}

/// MLflow 3.17's message for a registered model (or prompt) name that does not exist.
pub fn registered_model_not_found(name: &str) -> String {
    format!("Registered Model with name={name} not found")
}
