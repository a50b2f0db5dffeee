//! raptr's AWS adapters: [`S3Store`], the object store on one S3 bucket, and
//! [`DynamoTable`], the lease lock and the journal on one DynamoDB table.
//! They implement the ports of `raptr-store` and pass its conformance suite
//! on the emulator (`tests/`).
//!
//! Configuration comes from the standard AWS environment: credentials,
//! region, and `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_S3`,
//! `AWS_ENDPOINT_URL_DYNAMODB`) for an emulator. S3 uses path-style
//! addressing when `RAPTR_S3_PATH_STYLE` is `1` or `true` (emulators on
//! `127.0.0.1` need it).
//!
//! What this crate does not do: decide anything. The core says what to
//! write; these adapters only translate it into conditional requests and
//! S3's or DynamoDB's answers back into the ports' errors.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::error::SdkError;

pub mod dynamo;
pub mod s3;

pub use dynamo::DynamoTable;
pub use s3::{S3Options, S3Store};

/// Whether errors carry the SDK's whole account of a failure after their
/// one-sentence explanation. On by default (the functions' logs want it);
/// the command line turns it off unless `--verbose`.
static DETAIL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Sets whether errors carry the SDK's detail (see [`DETAIL`]).
pub fn set_error_detail(on: bool) {
    DETAIL.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// One sentence for an AWS failure about `what` (`bucket B`, `table T`,
/// `secret S`): what went wrong and the likely cause, then the SDK's own
/// text in parentheses when [`set_error_detail`] is on.
pub(crate) fn explain<E>(
    what: &str,
    err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    use aws_sdk_s3::error::ProvideErrorMetadata as _;
    let detail = aws_sdk_s3::error::DisplayErrorContext(err).to_string();
    let code = err.code().unwrap_or_default();
    let short = match err {
        SdkError::DispatchFailure(_) if detail.contains("region must be set") => {
            "no AWS region is set: set AWS_REGION (or a profile's region)".to_string()
        }
        SdkError::DispatchFailure(d) if detail.contains("credentials") => {
            let _ = d;
            "no AWS credentials were found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where a role provides them".to_string()
        }
        SdkError::DispatchFailure(d) if d.is_timeout() => {
            "the request to AWS timed out: check the network".to_string()
        }
        SdkError::DispatchFailure(d) if d.is_io() => {
            "AWS could not be reached: check the network, AWS_REGION and AWS_ENDPOINT_URL".to_string()
        }
        SdkError::DispatchFailure(_) | SdkError::ConstructionFailure(_) => {
            "the request to AWS could not be sent".to_string()
        }
        SdkError::TimeoutError(_) => "the request to AWS timed out: check the network".to_string(),
        SdkError::ResponseError(_) => "AWS's answer could not be read".to_string(),
        _ => match (code, http_status(err)) {
            ("NoSuchBucket", _) => "no such bucket: check its name (and that it is in this account)".into(),
            ("ResourceNotFoundException", _) => "it does not exist: check its name and the region (AWS_REGION)".into(),
            (
                "InvalidAccessKeyId"
                | "UnrecognizedClientException"
                | "InvalidClientTokenId"
                | "SignatureDoesNotMatch"
                | "ExpiredToken"
                | "ExpiredTokenException"
                | "InvalidSignatureException",
                _,
            ) => "the AWS credentials were refused (unknown, wrong or expired): check AWS_PROFILE or AWS_ACCESS_KEY_ID".into(),
            ("PermanentRedirect" | "AuthorizationHeaderMalformed" | "IllegalLocationConstraintException", _)
            | (_, Some(301)) => "the bucket is in another region: set the region it is in".into(),
            ("AccessDenied" | "AccessDeniedException", _) | (_, Some(403)) => {
                "access denied: the credentials in use may not do this (an IAM, bucket, key or secret policy)".into()
            }
            ("", Some(status)) => format!("AWS answered HTTP {status}"),
            ("", None) => "the request failed".into(),
            (code, _) => match err.message() {
                Some(m) => format!(
                    "{code}: {}",
                    m.lines().next().unwrap_or_default().chars().take(200).collect::<String>()
                ),
                None => code.to_string(),
            },
        },
    };
    if DETAIL.load(std::sync::atomic::Ordering::Relaxed) {
        format!("{what}: {short} ({detail})")
    } else {
        format!("{what}: {short}")
    }
}

/// The HTTP status of a failed request, if a response arrived at all.
pub(crate) fn http_status<E>(
    err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

/// The object key of an S3 event record, decoded: S3 URL-encodes keys in
/// events with `+` for a space (and emulators also encode `/`). `None` if
/// the escapes are broken or the result is not UTF-8.
pub fn decode_event_key(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The SDK configuration of the standard AWS environment.
pub async fn load_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// The SDK configuration of an emulator at `endpoint`, with placeholder
/// credentials (emulators accept any).
pub async fn emulator_config(endpoint: &str, region: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(region.to_string()))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "raptr-emulator",
            "raptr-emulator",
            None,
            None,
            "raptr-emulator",
        ))
        .load()
        .await
}

/// Whether `RAPTR_S3_PATH_STYLE` asks for path-style S3 addressing.
pub fn path_style_from_env() -> bool {
    std::env::var("RAPTR_S3_PATH_STYLE").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// An S3 client for `region` (or the configuration's own).
pub fn s3_client(conf: &SdkConfig, region: Option<&str>, path_style: bool) -> aws_sdk_s3::Client {
    let mut b = aws_sdk_s3::config::Builder::from(conf).force_path_style(path_style);
    if let Some(r) = region {
        b = b.region(Region::new(r.to_string()));
    }
    aws_sdk_s3::Client::from_conf(b.build())
}

/// A DynamoDB client.
pub fn dynamo_client(conf: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(conf)
}

/// The DynamoDB table of the lease and the journal: `RAPTR_TABLE`, else
/// `raptr`.
pub fn table_name_from_env() -> String {
    std::env::var("RAPTR_TABLE")
        .ok()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "raptr".into())
}

/// The adapters of the repository whose primary bucket is `bucket`, from the
/// standard AWS environment. The table's items are namespaced by the bucket,
/// so one table can serve several repositories.
pub async fn repository(bucket: &str) -> (S3Store, DynamoTable) {
    let conf = load_config().await;
    let store = S3Store::new(s3_client(&conf, None, path_style_from_env()), bucket);
    let table = DynamoTable::new(dynamo_client(&conf), table_name_from_env(), bucket);
    (store, table)
}

/// The store of another bucket (a replica) in `region`, from the standard
/// AWS environment.
pub async fn bucket_store(bucket: &str, region: &str) -> S3Store {
    let conf = load_config().await;
    S3Store::new(
        s3_client(&conf, Some(region), path_style_from_env()),
        bucket,
    )
}

/// The text of an AWS Secrets Manager secret (the signing key), by name or
/// ARN. The error names the secret.
pub async fn secret_string(name: &str) -> Result<String, String> {
    secret_string_with(&load_config().await, name).await
}

/// [`secret_string`] with a given SDK configuration.
pub async fn secret_string_with(conf: &SdkConfig, name: &str) -> Result<String, String> {
    let client = aws_sdk_secretsmanager::Client::new(conf);
    let out = client
        .get_secret_value()
        .secret_id(name)
        .send()
        .await
        .map_err(|e| explain(&format!("secret {name}"), &e))?;
    if let Some(s) = out.secret_string() {
        return Ok(s.to_string());
    }
    if let Some(b) = out.secret_binary() {
        return String::from_utf8(b.as_ref().to_vec())
            .map_err(|_| format!("secret {name}: its binary value is not UTF-8 text"));
    }
    Err(format!("secret {name}: has no value"))
}

/// Reads what a configuration names for signing and verifying: secrets
/// from Secrets Manager, files from the local file system (a Lambda
/// function's own files).
#[derive(Debug, Clone)]
pub struct SecretReader(pub SdkConfig);

#[async_trait::async_trait]
impl raptr_core::signing::load::Reader for SecretReader {
    async fn secret(&self, name: &str) -> Result<zeroize::Zeroizing<Vec<u8>>, String> {
        secret_string_with(&self.0, name)
            .await
            .map(|s| zeroize::Zeroizing::new(s.into_bytes()))
    }
    fn file(&self, path: &str, limit: u64) -> Result<zeroize::Zeroizing<Vec<u8>>, String> {
        raptr_core::signing::load::read_file(std::path::Path::new(path), limit)
    }
}

#[cfg(test)]
mod tests {
    use super::decode_event_key;

    #[test]
    fn event_keys_decode_from_aws_and_emulator_forms() {
        let want = "incoming/stable/main/build 1/g++_1:2.0~rc1_amd64.deb";
        // AWS keeps `/`; the emulator encodes it too.
        for raw in [
            "incoming/stable/main/build+1/g%2B%2B_1%3A2.0%7Erc1_amd64.deb",
            "incoming%2Fstable%2Fmain%2Fbuild+1%2Fg%2B%2B_1%3A2.0~rc1_amd64.deb",
        ] {
            assert_eq!(decode_event_key(raw).as_deref(), Some(want), "{raw}");
        }
        assert_eq!(decode_event_key("caf%C3%A9").as_deref(), Some("café"));
        assert_eq!(decode_event_key("bad%2"), None);
        assert_eq!(decode_event_key("bad%zz"), None);
        assert_eq!(decode_event_key("%FF"), None);
    }
}
