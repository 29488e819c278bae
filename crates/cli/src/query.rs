//! `genai-audit query`: read-only SQL over the committed audit log, one-shot or interactive.
//!
//! One-shot (`genai-audit query 'SELECT …'` or `-f script.sql`): each statement's result is
//! written to stdout (or `--output`) as a table, CSV, newline-delimited JSON or Parquet. Without
//! SQL, an interactive prompt: statements end with `;` and may span lines; `\d`, `\d audit_log`,
//! `\timing`, `\q`.
//!
//! The content hash key (for `audit_hash()`) is read from `GENAI_AUDIT_HASH_KEY` or the key
//! file, never created: a query must not mint a key the collector never used.

use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use futures::StreamExt;
use genai_audit_core::HashKey;
use genai_audit_query::datafusion::arrow::array::{Array, ArrayRef, RecordBatch, StringArray};
use genai_audit_query::datafusion::arrow::compute::cast;
use genai_audit_query::datafusion::arrow::datatypes::{
    DataType, Field, FieldRef, Schema, SchemaRef,
};
use genai_audit_query::datafusion::arrow::error::ArrowError;
use genai_audit_query::datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use genai_audit_query::datafusion::arrow::util::pretty;
use genai_audit_query::datafusion::arrow::{csv, json};
use genai_audit_query::datafusion::parquet::arrow::ArrowWriter;
use genai_audit_query::datafusion::parquet::basic::{Compression, ZstdLevel};
use genai_audit_query::datafusion::parquet::file::properties::WriterProperties;
use genai_audit_query::{
    Error as QueryError, QueryEngine, QueryOptions, audit_log_columns, render_error,
    split_statements,
};

use crate::keys::HASH_KEY_ENV;
use crate::store::{DEFAULT_STORE, STORE_URL_ENV};

/// Arguments of `query`.
#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// SQL to run: one statement, or several separated by `;`. Without SQL and without -f, an
    /// interactive prompt starts.
    #[arg(value_name = "SQL", conflicts_with = "file")]
    sql: Option<String>,
    /// Read the SQL from FILE (statements separated by `;`).
    #[arg(short = 'f', long = "file", value_name = "FILE.sql")]
    file: Option<PathBuf>,
    /// Store URL: a directory, file:///path, s3://bucket/prefix, gs://bucket/prefix or
    /// az://container/prefix. Credentials and endpoints come from the AWS_*, GOOGLE_* and
    /// AZURE_* environment variables.
    #[arg(long, value_name = "URL", env = STORE_URL_ENV, default_value = DEFAULT_STORE)]
    store: String,
    /// Only this tenant's records make up `audit_log`.
    #[arg(long, value_name = "T")]
    tenant: Option<String>,
    /// Output format: `table` (for people, with a row count and time), `csv` (with a header),
    /// `json` (one object per row and line), `parquet` (needs --output).
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
    /// Write results to FILE instead of stdout.
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// File holding the content hash key (hex), for `audit_hash('…')`. Read, never created.
    /// `GENAI_AUDIT_HASH_KEY` (hex) takes precedence; default: `./genai-audit-keys/hash.key`
    /// when it exists.
    #[arg(long, value_name = "FILE")]
    hash_key_file: Option<PathBuf>,
    /// Run the statements on the Apache DataFusion Ballista cluster whose scheduler is at
    /// df://HOST:PORT instead of in this process. Its scheduler and executors read the store
    /// themselves (docs/operations.md, "Querying at scale"). Needs a binary built with the
    /// cargo feature `cluster`.
    #[arg(long, value_name = "df://HOST:PORT")]
    cluster: Option<String>,
}

/// How results are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A bordered table for people.
    Table,
    /// CSV with a header line; LIST columns as JSON arrays.
    Csv,
    /// Newline-delimited JSON: one object per row, every column present (null included).
    Json,
    /// One Parquet file (zstd; text as plain UTF-8 strings, as in the store).
    Parquet,
}

/// Runs `query`. Exit status: 0 when every statement ran, 1 when a statement failed (SQL
/// error, refused write), 2 on a fatal error (store unreachable, no records, bad options).
pub fn run(args: &QueryArgs) -> Result<ExitCode> {
    let script = match (&args.sql, &args.file) {
        (Some(sql), _) => Some(sql.clone()),
        (None, Some(path)) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the SQL file {}", path.display()))?,
        ),
        (None, None) => None,
    };
    if args.format == OutputFormat::Parquet {
        if args.output.is_none() {
            bail!("--format parquet writes a binary file: give it with --output FILE");
        }
        if script.is_none() {
            bail!("--format parquet needs the SQL on the command line or in -f FILE");
        }
    }
    let hash_key = load_hash_key(args.hash_key_file.as_deref())?;
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async {
        check_local_store_exists(&args.store)?;
        let loc = crate::store::open(&args.store)?;
        let options = QueryOptions {
            tenant: args.tenant.clone(),
            hash_key,
            target_partitions: None,
        };
        let engine = match &args.cluster {
            None => QueryEngine::open(loc, options).await,
            Some(scheduler) => open_cluster(loc, options, scheduler).await?,
        }
        .with_context(|| format!("reading the commits of {}", args.store))?;
        match script {
            Some(script) => {
                if engine.summary().files == 0 {
                    bail!("{}", no_records(&args.store, args.tenant.as_deref()));
                }
                run_script(&engine, &script, args).await
            }
            None => repl(&engine, args).await,
        }
    })
}

/// An engine whose statements run on the Ballista cluster at `scheduler`.
#[cfg(feature = "cluster")]
pub(crate) async fn open_cluster(
    loc: genai_audit_store::StoreLocation,
    options: QueryOptions,
    scheduler: &str,
) -> Result<genai_audit_query::Result<QueryEngine>> {
    Ok(QueryEngine::open_cluster(loc, options, scheduler).await)
}

/// Without the cargo feature `cluster`: a clear refusal.
#[cfg(not(feature = "cluster"))]
pub(crate) async fn open_cluster(
    _loc: genai_audit_store::StoreLocation,
    _options: QueryOptions,
    _scheduler: &str,
) -> Result<genai_audit_query::Result<QueryEngine>> {
    bail!(
        "--cluster needs a genai-audit built with the cargo feature `cluster` (cargo build --features cluster)"
    )
}

/// "no audit records in <store>: nothing committed yet", or the same for one tenant.
pub(crate) fn no_records(store: &str, tenant: Option<&str>) -> String {
    match tenant {
        Some(t) => format!("no audit records of tenant {t} in {store}: nothing committed yet"),
        None => format!("no audit records in {store}: nothing committed yet"),
    }
}

/// A local store that does not exist is reported, not created (opening one creates it).
pub(crate) fn check_local_store_exists(url: &str) -> Result<()> {
    let dir = if let Some(rest) = url.strip_prefix("file://") {
        PathBuf::from(rest)
    } else if url.contains("://") {
        return Ok(());
    } else {
        PathBuf::from(url)
    };
    if !dir.exists() {
        bail!(
            "no audit records in {url}: nothing committed yet (no store at {})",
            dir.display()
        );
    }
    Ok(())
}

/// The hash key for `audit_hash()`: `GENAI_AUDIT_HASH_KEY`, else the key file (explicit: must
/// exist; default: used when present). Never creates one.
pub(crate) fn load_hash_key(explicit: Option<&Path>) -> Result<Option<HashKey>> {
    if let Ok(hex) = std::env::var(HASH_KEY_ENV) {
        return HashKey::from_hex(&hex)
            .map(Some)
            .with_context(|| format!("reading {HASH_KEY_ENV}"));
    }
    let path = explicit.map_or_else(
        || PathBuf::from(crate::DEFAULT_HASH_KEY_FILE),
        Path::to_path_buf,
    );
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            check_key_permissions(&path)?;
            let key = HashKey::from_hex(&text)
                .with_context(|| format!("reading the hash key file {}", path.display()))?;
            tracing::debug!(path = %path.display(), key_id = key.id(), "loaded hash key");
            Ok(Some(key))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound && explicit.is_none() => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading the hash key file {}", path.display())),
    }
}

fn check_key_permissions(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            bail!(
                "the hash key file {} is readable by others (mode {:o}); run chmod 600 on it",
                path.display(),
                mode & 0o777
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Where results go.
fn open_output(path: Option<&Path>) -> Result<Box<dyn Write + Send>> {
    Ok(match path {
        Some(p) => Box::new(BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(BufWriter::new(io::stdout())),
    })
}

async fn run_script(engine: &QueryEngine, script: &str, args: &QueryArgs) -> Result<ExitCode> {
    let mut split = split_statements(script);
    if split.has_pending_code() {
        split.complete.push(std::mem::take(&mut split.rest));
    }
    if split.complete.is_empty() {
        bail!("no SQL statement given");
    }
    if args.format == OutputFormat::Parquet && split.complete.len() > 1 {
        bail!("--format parquet writes one result: give one statement");
    }
    let mut out = open_output(args.output.as_deref())?;
    for statement in &split.complete {
        match execute(engine, statement, args.format, &mut out, true).await {
            Ok(_) => {}
            Err(StatementError::Query(e)) => {
                out.flush()?;
                eprintln!("{}", render_error(&e, statement));
                return Ok(ExitCode::from(1));
            }
            Err(StatementError::Output(e)) => return Err(e),
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Why a statement failed: the query (reported, the session goes on) or writing its result.
enum StatementError {
    Query(QueryError),
    Output(anyhow::Error),
}

impl From<QueryError> for StatementError {
    fn from(e: QueryError) -> Self {
        StatementError::Query(e)
    }
}

/// Runs one statement and writes its result; returns the rows written.
async fn execute(
    engine: &QueryEngine,
    sql: &str,
    format: OutputFormat,
    out: &mut (dyn Write + Send),
    timing: bool,
) -> Result<u64, StatementError> {
    let started = Instant::now();
    let df = engine.sql(sql).await?;
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let mut stream = df.execute_stream().await.map_err(QueryError::from)?;
    let mut sink = Sink::new(format, schema, &mut *out).map_err(StatementError::Output)?;
    let mut rows = 0u64;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(QueryError::from)?;
        rows += batch.num_rows() as u64;
        sink.write(&batch).map_err(StatementError::Output)?;
    }
    sink.finish().map_err(StatementError::Output)?;
    if format == OutputFormat::Table {
        let footer = table_footer(rows, timing.then(|| started.elapsed()));
        writeln!(out, "{footer}").map_err(|e| StatementError::Output(e.into()))?;
    }
    Ok(rows)
}

/// `3 rows in set. Query took 0.012 seconds.` (datafusion-cli's wording).
fn table_footer(rows: u64, elapsed: Option<Duration>) -> String {
    let mut s = format!("{rows} row{} in set.", if rows == 1 { "" } else { "s" });
    if let Some(t) = elapsed {
        let _ = write!(s, " Query took {:.3} seconds.", t.as_secs_f64());
    }
    s.push('\n');
    s
}

/// A result being written in one format, batch by batch (the table collects, to size its
/// columns).
enum Sink<W: Write + Send> {
    Table {
        out: W,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    },
    Csv(csv::Writer<W>, SchemaRef),
    Json(json::LineDelimitedWriter<W>),
    /// The writer and the schema it writes (text as `Utf8`, see [`without_views`]).
    Parquet(ArrowWriter<W>, SchemaRef),
}

impl<W: Write + Send> Sink<W> {
    fn new(format: OutputFormat, schema: SchemaRef, out: W) -> Result<Self> {
        Ok(match format {
            OutputFormat::Table => Sink::Table {
                out,
                schema,
                batches: Vec::new(),
            },
            OutputFormat::Csv => {
                let mut w = csv::WriterBuilder::new().with_header(true).build(out);
                // The header even for an empty result.
                let flat = csv_schema(&schema);
                w.write(&RecordBatch::new_empty(Arc::clone(&flat)))?;
                Sink::Csv(w, flat)
            }
            OutputFormat::Json => Sink::Json(
                json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, json::writer::LineDelimited>(out),
            ),
            OutputFormat::Parquet => {
                let props = WriterProperties::builder()
                    .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
                    .build();
                let written: SchemaRef = Arc::new(Schema::new(
                    schema
                        .fields()
                        .iter()
                        .map(|f| without_views(f))
                        .collect::<Vec<_>>(),
                ));
                Sink::Parquet(
                    ArrowWriter::try_new(out, Arc::clone(&written), Some(props))?,
                    written,
                )
            }
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match self {
            Sink::Table { batches, .. } => batches.push(batch.clone()),
            Sink::Csv(w, flat) => w.write(&flatten_for_csv(batch, flat)?)?,
            Sink::Json(w) => w.write(batch)?,
            Sink::Parquet(w, written) => {
                // `cast` to the same type only clones the column.
                let columns = batch
                    .columns()
                    .iter()
                    .zip(written.fields())
                    .map(|(c, f)| cast(c, f.data_type()))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                w.write(&RecordBatch::try_new(Arc::clone(written), columns)?)?
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<()> {
        match self {
            Sink::Table {
                mut out,
                schema,
                batches,
            } => {
                let table = if batches.iter().all(|b| b.num_rows() == 0) {
                    pretty::pretty_format_batches_with_schema(schema, &[])?.to_string()
                } else {
                    let options = FormatOptions::default()
                        .with_null("NULL")
                        .with_display_error(true);
                    pretty::pretty_format_batches_with_options(&batches, &options)?.to_string()
                };
                writeln!(out, "{table}")?;
                out.flush()?;
            }
            Sink::Csv(w, _) => w.into_inner().flush()?,
            Sink::Json(mut w) => {
                w.finish()?;
                w.into_inner().flush()?;
            }
            Sink::Parquet(w, _) => {
                w.close()?;
            }
        }
        Ok(())
    }
}

/// Writes `batches` (of `schema`) in `format` to `out`, footer excluded (what `execute` does
/// while streaming, for tests).
#[cfg(test)]
fn render(
    format: OutputFormat,
    schema: SchemaRef,
    batches: &[RecordBatch],
    out: impl Write + Send,
) -> Result<()> {
    let mut sink = Sink::new(format, schema, out)?;
    for b in batches {
        sink.write(b)?;
    }
    sink.finish()
}

/// CSV has no nested values: LIST (and other nested) columns become text.
fn csv_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| {
                if f.data_type().is_nested() {
                    Arc::new(Field::new(f.name(), DataType::Utf8, true))
                } else {
                    Arc::clone(f)
                }
            })
            .collect::<Vec<_>>(),
    ))
}

/// `field` with its text and binary views as plain `Utf8` / `Binary`: the engine reads text
/// as views, but a result file is for any Parquet reader, and older ones (pyarrow before 16,
/// Spark) know only the plain types, which the store's own files use too.
fn without_views(field: &Field) -> FieldRef {
    let ty = match field.data_type() {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        DataType::List(item) => DataType::List(without_views(item)),
        DataType::LargeList(item) => DataType::LargeList(without_views(item)),
        DataType::Struct(fields) => {
            DataType::Struct(fields.iter().map(|f| without_views(f)).collect())
        }
        other => other.clone(),
    };
    Arc::new(field.clone().with_data_type(ty))
}

fn flatten_for_csv(batch: &RecordBatch, flat: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let columns = batch
        .columns()
        .iter()
        .map(|c| {
            if c.data_type().is_nested() {
                nested_as_text(c)
            } else {
                Ok(Arc::clone(c))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(Arc::clone(flat), columns)
}

/// A list of strings as a JSON array (`["EMAIL","PHONE"]`); other nested values as Arrow
/// displays them.
fn nested_as_text(array: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    use genai_audit_query::datafusion::arrow::array::AsArray;
    if let DataType::List(item) = array.data_type()
        && item.data_type() == &DataType::Utf8
    {
        let list = array.as_list::<i32>();
        let text: StringArray = (0..list.len())
            .map(|i| {
                list.is_valid(i).then(|| {
                    let values = list.value(i);
                    let strings = values.as_string::<i32>();
                    let items: Vec<Option<&str>> = strings.iter().collect();
                    serde_json::to_string(&items).unwrap_or_default()
                })
            })
            .collect();
        return Ok(Arc::new(text));
    }
    let formatter = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default())?;
    let text: StringArray = (0..array.len())
        .map(|i| array.is_valid(i).then(|| formatter.value(i).to_string()))
        .collect();
    Ok(Arc::new(text))
}

/// `\d audit_log`: each column with its type and meaning.
pub fn describe_audit_log() -> String {
    let cols = audit_log_columns();
    let name_w = cols.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let type_w = cols
        .iter()
        .map(|c| c.sql_type.chars().count())
        .max()
        .unwrap_or(0);
    let mut s = String::new();
    let _ = writeln!(s, "{:name_w$}  {:type_w$}  null  meaning", "column", "type");
    for c in &cols {
        let _ = writeln!(
            s,
            "{:name_w$}  {:type_w$}  {:4}  {}",
            c.name,
            c.sql_type,
            if c.nullable { "yes" } else { "no" },
            c.description
        );
    }
    s
}

const REPL_HELP: &str = "\
Statements end with ; and may span lines. Only queries: the audit log is read-only.
  \\d             list tables
  \\d audit_log   columns of audit_log and what they mean
  \\timing        toggle the query time after each result
  \\q             quit (or Ctrl-D)
Ctrl-C clears the statement being typed.";

/// A backslash command's effect on the prompt loop.
enum Command {
    Continue,
    Quit,
}

fn backslash(
    engine: &QueryEngine,
    line: &str,
    timing: &mut bool,
    out: &mut dyn Write,
) -> Result<Command> {
    let mut words = line.split_whitespace();
    let cmd = words.next().unwrap_or_default();
    let arg = words.next();
    match (cmd, arg) {
        ("\\q", _) => return Ok(Command::Quit),
        ("\\?" | "\\h" | "\\help", _) => writeln!(out, "{REPL_HELP}")?,
        ("\\timing", _) => {
            *timing = !*timing;
            writeln!(out, "Timing is {}.", if *timing { "on" } else { "off" })?;
        }
        ("\\d", None) => {
            let s = engine.summary();
            let days = s
                .days
                .map(|(a, b)| format!(", {a} .. {b}"))
                .unwrap_or_default();
            writeln!(
                out,
                "audit_log  ({} rows in {} files, {} tenant{}{days})",
                s.rows,
                s.files,
                s.tenants.len(),
                if s.tenants.len() == 1 { "" } else { "s" }
            )?;
        }
        ("\\d", Some("audit_log")) => write!(out, "{}", describe_audit_log())?,
        ("\\d", Some(other)) => writeln!(out, "no table {other}: the only table is audit_log")?,
        _ => writeln!(out, "unknown command {cmd}: \\? lists the commands")?,
    }
    Ok(Command::Continue)
}

/// The interactive prompt.
async fn repl(engine: &QueryEngine, args: &QueryArgs) -> Result<ExitCode> {
    use rustyline::error::ReadlineError;

    let mut rl = rustyline::DefaultEditor::new().context("starting the line editor")?;
    let history = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".genai_audit_history"));
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    let summary = engine.summary();
    if summary.files == 0 {
        eprintln!(
            "{} (queries will see records as soon as they are committed)",
            no_records(&args.store, args.tenant.as_deref())
        );
    } else {
        eprintln!(
            "audit_log: {} rows in {} files{}. \\? for help, \\q to quit.",
            summary.rows,
            summary.files,
            summary
                .days
                .as_ref()
                .map(|(a, b)| format!(", {a} .. {b}"))
                .unwrap_or_default()
        );
    }
    let mut out = open_output(args.output.as_deref())?;
    let mut buffer = String::new();
    let mut timing = true;
    loop {
        let prompt = if buffer.trim().is_empty() {
            "audit> "
        } else {
            "   ..> "
        };
        let line = match rl.readline(prompt) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                buffer.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e).context("reading input"),
        };
        let trimmed = line.trim();
        if buffer.trim().is_empty()
            && (trimmed.starts_with('\\') || matches!(trimmed, "quit" | "exit"))
        {
            let _ = rl.add_history_entry(trimmed);
            if matches!(trimmed, "quit" | "exit") {
                break;
            }
            match backslash(engine, trimmed, &mut timing, &mut out)? {
                Command::Quit => break,
                Command::Continue => {
                    out.flush()?;
                    continue;
                }
            }
        }
        buffer.push_str(&line);
        buffer.push('\n');
        let split = split_statements(&buffer);
        for statement in &split.complete {
            let _ = rl.add_history_entry(format!("{statement};"));
            match execute(engine, statement, args.format, &mut out, timing).await {
                Ok(_) => {}
                Err(StatementError::Query(e)) => {
                    out.flush()?;
                    eprintln!("{}", render_error(&e, statement));
                }
                Err(StatementError::Output(e)) => return Err(e),
            }
            out.flush()?;
        }
        buffer = if split.has_pending_code() {
            format!("{}\n", split.rest)
        } else {
            String::new()
        };
    }
    out.flush()?;
    if let Some(h) = &history {
        let _ = rl.save_history(h);
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use genai_audit_query::datafusion::arrow::array::{
        Decimal128Array, Int64Array, ListBuilder, StringBuilder,
    };

    fn batch() -> RecordBatch {
        let mut pii = ListBuilder::new(StringBuilder::new());
        pii.values().append_value("EMAIL");
        pii.values().append_value("PHONE");
        pii.append(true);
        pii.append(true);
        let cost = Decimal128Array::from(vec![Some(1_500_000_000), None])
            .with_precision_and_scale(38, 12)
            .unwrap();
        RecordBatch::try_from_iter(vec![
            ("n", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
            (
                "user_id",
                Arc::new(StringArray::from(vec![Some("u,1"), None])) as ArrayRef,
            ),
            ("total_cost_usd", Arc::new(cost) as ArrayRef),
            ("pii_types", Arc::new(pii.finish()) as ArrayRef),
        ])
        .unwrap()
    }

    fn rendered(format: OutputFormat, batches: &[RecordBatch]) -> String {
        let schema = batch().schema();
        let mut out = Vec::new();
        render(format, schema, batches, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_is_one_object_per_line_with_every_column() {
        let text = rendered(OutputFormat::Json, &[batch()]);
        let rows: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["user_id"], "u,1");
        assert_eq!(rows[0]["pii_types"], serde_json::json!(["EMAIL", "PHONE"]));
        // Decimals as exact JSON numbers, all 12 digits.
        assert!(
            text.contains(r#""total_cost_usd":0.001500000000"#),
            "{text}"
        );
        assert!(rows[1]["user_id"].is_null() && rows[1].get("user_id").is_some());
    }

    #[test]
    fn csv_has_a_header_even_when_empty_and_lists_as_json() {
        let text = rendered(OutputFormat::Csv, &[batch()]);
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("n,user_id,total_cost_usd,pii_types"));
        assert_eq!(
            lines.next(),
            Some(r#"1,"u,1",0.001500000000,"[""EMAIL"",""PHONE""]""#)
        );
        assert_eq!(lines.next(), Some("2,,,[]"));
        assert_eq!(
            rendered(OutputFormat::Csv, &[]),
            "n,user_id,total_cost_usd,pii_types\n"
        );
    }

    #[test]
    fn table_shows_nulls_and_an_empty_result_keeps_its_header() {
        let text = rendered(OutputFormat::Table, &[batch()]);
        assert!(
            text.contains("| 1 | u,1     | 0.001500000000 | [EMAIL, PHONE] |"),
            "{text}"
        );
        assert!(text.contains("NULL"), "{text}");
        let empty = rendered(OutputFormat::Table, &[]);
        assert!(
            empty.contains("| n | user_id | total_cost_usd | pii_types |"),
            "{empty}"
        );
        assert_eq!(table_footer(1, None), "1 row in set.\n");
        assert_eq!(
            table_footer(3, Some(Duration::from_millis(12))),
            "3 rows in set. Query took 0.012 seconds.\n"
        );
    }

    #[test]
    fn parquet_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.parquet");
        let file = std::fs::File::create(&path).unwrap();
        render(OutputFormat::Parquet, batch().schema(), &[batch()], file).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let back = genai_audit_store::parquet_file::decode(bytes.into()).unwrap();
        assert_eq!(back.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
    }

    #[test]
    fn describe_lists_every_column_with_its_meaning() {
        let text = describe_audit_log();
        assert!(
            text.lines()
                .any(|l| l.starts_with("prompt_hash") && l.contains("HMAC"))
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with("dt ") && l.contains("start_time"))
        );
        assert_eq!(text.lines().count(), audit_log_columns().len() + 1);
    }
}
