//! Opening the audit store from the command line.

use std::ffi::OsString;

use anyhow::{Context, Result};
use genai_audit_store::StoreLocation;

/// Environment variable naming the store URL (`--store`).
pub const STORE_URL_ENV: &str = "GENAI_AUDIT_STORE_URL";

/// The store used when none is given (same as the collector's default configuration).
pub const DEFAULT_STORE: &str = "./genai-audit-data";

/// Object-store options from the environment.
///
/// Every variable whose name starts with `AWS_`, `GOOGLE_` or `AZURE_` is passed on with its
/// name lower-cased (`AWS_ENDPOINT_URL` → `aws_endpoint_url`, `AZURE_STORAGE_ACCOUNT_NAME` →
/// `azure_storage_account_name`), which is how `object_store` spells its configuration keys;
/// keys it does not know are ignored by it. The store crate reads no environment itself: the
/// binary is the only place that does. Values are secrets: never log them.
pub fn store_options() -> Vec<(String, String)> {
    options_from(std::env::vars_os())
}

fn options_from(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = vars
        .into_iter()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| {
            ["AWS_", "GOOGLE_", "AZURE_"]
                .iter()
                .any(|p| k.starts_with(p))
        })
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    out.sort();
    out
}

/// `--store` and `--tenant`, for commands that read the audit log (`report`).
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// Store URL: a directory, file:///path, s3://bucket/prefix, gs://bucket/prefix or
    /// az://container/prefix. Credentials and endpoints come from the AWS_*, GOOGLE_* and
    /// AZURE_* environment variables.
    #[arg(long, value_name = "URL", env = STORE_URL_ENV, default_value = DEFAULT_STORE)]
    pub store: String,
    /// Only this tenant's records.
    #[arg(long, value_name = "T")]
    pub tenant: Option<String>,
}

/// Opens the store at `url` with the options from the environment.
pub fn open(url: &str) -> Result<StoreLocation> {
    StoreLocation::open(url, &store_options()).with_context(|| format!("opening the store {url}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_cloud_variables_are_passed_lower_cased() {
        let vars = [
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
            ("HOME", "/root"),
            ("GOOGLE_SERVICE_ACCOUNT", "/sa.json"),
            ("AZURE_STORAGE_ACCOUNT_NAME", "acct"),
            ("MY_AWS_KEY", "no"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        assert_eq!(
            options_from(vars),
            [
                ("aws_endpoint_url", "http://127.0.0.1:9000"),
                ("azure_storage_account_name", "acct"),
                ("google_service_account", "/sa.json"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }
}
