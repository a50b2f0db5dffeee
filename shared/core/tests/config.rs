//! The configuration: accepted and refused documents, each checked by the
//! Rust validator and, where the schema can express the rule, by
//! `config.schema.json` through an independent validator (Python's
//! jsonschema, installed by `make setup`): both must agree.

use std::path::Path;
use std::process::Command;

use raptr_core::config::{Config, SigningKey, SigningKeys};
use serde_json::{json, Value};

fn good() -> Value {
    json!({
        "layouts": {
            "default": {"distributions": {
                "stable": {"components": ["main", "contrib"], "architectures": ["amd64", "arm64", "source"]},
                "testing": {"components": ["main"], "architectures": ["amd64"], "codename": "trixie", "suite": "testing", "xz": true, "uploads": false}
            }},
            "edge": {"distributions": {"nightly": {"components": ["main"], "architectures": ["riscv64"]}}}
        },
        "primary": {"bucket": "raptr-primary", "region": "us-east-1", "layout": "default"},
        "replicas": [
            {"name": "eu", "bucket": "raptr-replica-eu", "region": "eu-west-1", "layout": "default"},
            {"name": "edge", "bucket": "raptr-replica-edge", "region": "us-west-2", "layout": "edge"}
        ],
        "release": {"origin": "Example Corp", "label": "example", "description": "Example packages", "valid_for_days": 7},
        "signing_key": {"secret": "arn:aws:secretsmanager:us-east-1:123456789012:secret:raptr"},
        "retention": {"grace_period_hours": 48, "pending_timeout_hours": 24}
    })
}

/// `good()` with the value at `path` (dot-separated, `[n]` for arrays)
/// replaced, or removed when `value` is `None`.
fn with(path: &str, value: Option<Value>) -> Value {
    let mut doc = good();
    let parts: Vec<&str> = path.split('.').collect();
    let mut cur = &mut doc;
    for p in &parts[..parts.len() - 1] {
        cur = match p.parse::<usize>() {
            Ok(i) => &mut cur[i],
            Err(_) => &mut cur[*p],
        };
    }
    let last = parts[parts.len() - 1];
    match value {
        Some(v) => match last.parse::<usize>() {
            Ok(i) => cur[i] = v,
            Err(_) => cur[last] = v,
        },
        None => {
            cur.as_object_mut().expect("object").remove(last);
        }
    }
    doc
}

/// Refused documents: (what, document, path the error must name, whether
/// the schema can express the rule).
fn bad() -> Vec<(&'static str, Value, &'static str, bool)> {
    vec![
        (
            "unknown top-level key",
            with("colour", Some(json!("blue"))),
            "unknown field `colour`",
            true,
        ),
        (
            "unknown distribution key",
            with(
                "layouts.default.distributions.stable.arch",
                Some(json!(["amd64"])),
            ),
            "unknown field `arch`",
            true,
        ),
        (
            "xz that is not a boolean",
            with(
                "layouts.default.distributions.stable.xz",
                Some(json!("yes")),
            ),
            "expected a boolean",
            true,
        ),
        (
            "uploads that is not a boolean",
            with(
                "layouts.default.distributions.stable.uploads",
                Some(json!("no")),
            ),
            "expected a boolean",
            true,
        ),
        (
            "missing primary",
            with("primary", None),
            "missing field `primary`",
            true,
        ),
        (
            "components not a list",
            with(
                "layouts.default.distributions.stable.components",
                Some(json!("main")),
            ),
            "line",
            true,
        ),
        (
            "no components",
            with(
                "layouts.default.distributions.stable.components",
                Some(json!([])),
            ),
            "layouts.default.distributions.stable.components",
            true,
        ),
        (
            "duplicate architecture",
            with(
                "layouts.default.distributions.stable.architectures",
                Some(json!(["amd64", "amd64"])),
            ),
            "architectures[1]",
            true,
        ),
        (
            "architecture all",
            with(
                "layouts.default.distributions.stable.architectures",
                Some(json!(["all"])),
            ),
            "architectures[0]",
            true,
        ),
        (
            "architecture wildcard",
            with(
                "layouts.default.distributions.stable.architectures",
                Some(json!(["linux-any"])),
            ),
            "architectures[0]",
            true,
        ),
        (
            "uppercase architecture",
            with(
                "layouts.default.distributions.stable.architectures",
                Some(json!(["AMD64"])),
            ),
            "architectures[0]",
            true,
        ),
        (
            "component with a slash",
            with(
                "layouts.default.distributions.stable.components",
                Some(json!(["main/extra"])),
            ),
            "components[0]",
            true,
        ),
        (
            "distribution with a slash",
            with(
                "layouts.default.distributions",
                Some(json!({"a/b": {"components": ["main"], "architectures": ["amd64"]}})),
            ),
            "layouts.default.distributions.a/b",
            true,
        ),
        (
            "no distributions",
            with("layouts.default.distributions", Some(json!({}))),
            "layouts.default.distributions",
            true,
        ),
        (
            "no layouts",
            with("layouts", Some(json!({}))),
            "layouts",
            true,
        ),
        (
            "bad bucket",
            with("primary.bucket", Some(json!("Raptr_Primary"))),
            "primary.bucket",
            true,
        ),
        (
            "bad replica name",
            with("replicas.0.name", Some(json!("EU West"))),
            "replicas[0].name",
            true,
        ),
        (
            "origin with a newline",
            with("release.origin", Some(json!("Example\nSuite: evil"))),
            "release.origin",
            true,
        ),
        (
            "blank label",
            with("release.label", Some(json!("   "))),
            "release.label",
            true,
        ),
        (
            "zero valid days",
            with("release.valid_for_days", Some(json!(0))),
            "release.valid_for_days",
            true,
        ),
        (
            "negative grace",
            with("retention.grace_period_hours", Some(json!(-1))),
            "line",
            true,
        ),
        (
            "zero grace",
            with("retention.grace_period_hours", Some(json!(0))),
            "retention.grace_period_hours",
            true,
        ),
        (
            "an upload keyring in two places",
            with(
                "layouts.default.distributions.stable.upload_keyring",
                Some(json!({"secret": "a", "file": "b"})),
            ),
            "layouts.default.distributions.stable.upload_keyring",
            true,
        ),
        (
            "an empty upload keyring",
            with(
                "layouts.default.distributions.stable.upload_keyring",
                Some(json!({"file": " "})),
            ),
            "layouts.default.distributions.stable.upload_keyring",
            true,
        ),
        (
            "an upload keyring of a distribution closed to uploads",
            with(
                "layouts.default.distributions.testing.upload_keyring",
                Some(json!({"secret": "raptr/uploaders"})),
            ),
            "layouts.default.distributions.testing.upload_keyring",
            false,
        ),
        (
            "a key in two places",
            with("signing_key", Some(json!({"secret": "a", "file": "b"}))),
            "signing_key",
            true,
        ),
        (
            "a key in no place",
            with("signing_key", Some(json!({"passphrase": {"env": "P"}}))),
            "signing_key",
            true,
        ),
        (
            "no signing key in the list",
            with("signing_key", Some(json!([]))),
            "signing_key",
            true,
        ),
        (
            "nine signing keys",
            with(
                "signing_key",
                Some(json!((0..9)
                    .map(|i| json!({"secret": format!("k{i}")}))
                    .collect::<Vec<_>>())),
            ),
            "signing_key",
            true,
        ),
        (
            "a blank key in the list",
            with("signing_key", Some(json!([{"secret": "a"}, {"file": ""}]))),
            "signing_key[1]",
            true,
        ),
        (
            "the same key twice",
            with(
                "signing_key",
                Some(json!([{"secret": "a"}, {"secret": "a"}])),
            ),
            "signing_key[1]",
            false,
        ),
        (
            "an empty passphrase place",
            with(
                "signing_key",
                Some(json!({"secret": "a", "passphrase": {"file": " "}})),
            ),
            "signing_key.passphrase",
            true,
        ),
        (
            "an unknown passphrase place",
            with(
                "signing_key",
                Some(json!({"secret": "a", "passphrase": {"vault": "x"}})),
            ),
            "line",
            true,
        ),
        (
            "a signing key that is a string",
            with("signing_key", Some(json!("raptr/key"))),
            "line",
            true,
        ),
        (
            "empty signing key",
            with("signing_key", Some(json!({"file": " "}))),
            "signing_key",
            true,
        ),
        (
            "unknown signing key kind",
            with("signing_key", Some(json!({"vault": "a"}))),
            "line",
            true,
        ),
        // Cross-references: raptr checks them, the schema cannot.
        (
            "primary names a missing layout",
            with("primary.layout", Some(json!("nope"))),
            "primary.layout",
            false,
        ),
        (
            "replica names a missing layout",
            with("replicas.1.layout", Some(json!("nope"))),
            "replicas[1].layout",
            false,
        ),
        (
            "replica named twice",
            with("replicas.1.name", Some(json!("eu"))),
            "replicas[1].name",
            false,
        ),
        (
            "bucket used twice",
            with("replicas.1.bucket", Some(json!("raptr-primary"))),
            "replicas[1].bucket",
            false,
        ),
        (
            "a mirror with no keyring that does not allow unsigned",
            with(
                "mirrors",
                Some(
                    json!([{"name": "up", "url": "https://up.example/debian", "distribution": "stable"}]),
                ),
            ),
            "mirrors[0].keyring",
            true,
        ),
        (
            "a mirror into a distribution that does not exist",
            with(
                "mirrors",
                Some(
                    json!([{"name": "up", "url": "file:/srv/up", "allow_unsigned": true, "distribution": "sid"}]),
                ),
            ),
            "mirrors[0].distribution",
            false,
        ),
        (
            "a retention policy that keeps nothing",
            with(
                "layouts.default.distributions.stable.retention",
                Some(json!({"keep": 0})),
            ),
            "retention.keep",
            true,
        ),
        (
            "scheduled snapshots every 0 hours",
            with(
                "layouts.default.distributions.stable.snapshots",
                Some(json!({"every_hours": 0, "keep": 3})),
            ),
            "snapshots",
            true,
        ),
    ]
}

fn parse(doc: &Value) -> Result<Config, raptr_core::config::ConfigError> {
    Config::from_json(doc.to_string().as_bytes(), "config.json")
}

#[test]
fn a_good_configuration_is_accepted() {
    let c = parse(&good()).expect("accepted");
    assert_eq!(c.replicas.len(), 2);
    assert_eq!(
        c.signing_key,
        SigningKeys::one(SigningKey::secret(
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:raptr"
        ))
    );
    // An upload keyring.
    let c = parse(&with(
        "layouts.default.distributions.stable.upload_keyring",
        Some(json!({"secret": "raptr/uploaders"})),
    ))
    .expect("accepted");
    assert_eq!(
        c.layouts["default"].distributions["stable"]
            .upload_keyring
            .as_ref()
            .and_then(|k| k.secret.as_deref()),
        Some("raptr/uploaders")
    );
    // Several keys, with passphrases from each kind of place.
    let keys = json!([
        {"secret": "raptr/old"},
        {"secret": "raptr/new", "passphrase": {"secret": "raptr/new-passphrase"}},
        {"file": "/etc/raptr/k.asc", "passphrase": {"file": "/etc/raptr/k.pass"}},
        {"file": "/etc/raptr/j.asc", "passphrase": {"env": "RAPTR_J"}},
    ]);
    let c = parse(&with("signing_key", Some(keys.clone()))).expect("accepted");
    assert_eq!(c.signing_key.0.len(), 4);
    assert_eq!(c.signing_key.path(2), "signing_key[2]");
    // It is written back as it was read: a list stays a list, one stays one.
    assert_eq!(serde_json::to_value(&c).expect("json")["signing_key"], keys);
    // Defaults fill what is left out.
    let c = parse(&with("retention", None)).expect("accepted");
    assert_eq!(
        (
            c.retention.grace_period_hours,
            c.retention.pending_timeout_hours
        ),
        (48, 24)
    );
    assert!(parse(&with("replicas", None))
        .expect("accepted")
        .replicas
        .is_empty());
}

#[test]
fn the_default_local_configuration_is_valid() {
    let c = Config::default_local("repo");
    c.validate("default").expect("valid");
    let dist = &c.layouts["default"].distributions["stable"];
    assert_eq!(dist.architectures, ["amd64", "arm64", "i386", "source"]);
    assert!(c.layouts["default"].distributions.contains_key("testing"));
    // It round-trips through its own JSON form.
    let text = serde_json::to_string(&c).expect("json");
    assert_eq!(
        Config::from_json(text.as_bytes(), "default").expect("parse"),
        c
    );
}

#[test]
fn bad_configurations_are_refused_naming_the_place() {
    for (what, doc, place, _) in bad() {
        let err = parse(&doc).expect_err(what);
        let msg = err.to_string();
        assert!(msg.starts_with("config.json: "), "{what}: {msg}");
        assert!(
            msg.contains(place),
            "{what}: the error names {place:?}: {msg}"
        );
    }
}

/// The schema accepts and refuses the same documents as raptr (where it
/// can express the rule), judged by Python's jsonschema.
#[test]
fn the_schema_agrees_with_the_validator() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".cache/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make setup`",
        python.display()
    );
    let mut docs = vec![
        ("good", good(), true),
        (
            "default",
            serde_json::to_value(Config::default_local("repo")).expect("json"),
            true,
        ),
    ];
    for (what, doc, _, schema_too) in bad() {
        docs.push((what, doc, !schema_too));
    }
    let payload = Value::Array(docs.iter().map(|(_, d, _)| d.clone()).collect());
    let script = r#"
import json, sys
from jsonschema import Draft202012Validator
schema = json.load(open(sys.argv[1]))
Draft202012Validator.check_schema(schema)
v = Draft202012Validator(schema)
for doc in json.load(sys.stdin):
    print("valid" if v.is_valid(doc) else "invalid")
"#;
    let mut child = Command::new(&python)
        .args(["-c", script])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("config.schema.json"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run python");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(payload.to_string().as_bytes())
            .expect("write");
    }
    let out = child.wait_with_output().expect("python");
    assert!(out.status.success(), "the schema check failed to run");
    let verdicts: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(verdicts.len(), docs.len());
    for ((what, doc, schema_valid), verdict) in docs.iter().zip(&verdicts) {
        let want = if *schema_valid { "valid" } else { "invalid" };
        assert_eq!(verdict, want, "{what}: the schema says {verdict}");
        if *schema_valid && *what != "good" && *what != "default" {
            assert!(parse(doc).is_err(), "{what}: raptr still refuses it");
        }
    }
}
