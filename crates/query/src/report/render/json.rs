//! JSON: one pretty-printed document per report, `{"report": NAME, "version": N, …members}`.
//! Members are the report struct's fields (documented in `docs/reports.md`); money is an exact
//! decimal string, times RFC 3339 UTC, dates `YYYY-MM-DD`.

use std::io;

use serde::Serialize;

use crate::report::REPORT_JSON_VERSION;

#[derive(Serialize)]
struct Document<'a, T: Serialize> {
    report: &'static str,
    version: u32,
    #[serde(flatten)]
    body: &'a T,
}

/// Writes `body` as the JSON document of report `report`, with a final newline.
pub(super) fn write<T: Serialize>(
    out: &mut dyn io::Write,
    report: &'static str,
    body: &T,
) -> io::Result<()> {
    let doc = Document {
        report,
        version: REPORT_JSON_VERSION,
        body,
    };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    out.write_all(b"\n")
}
