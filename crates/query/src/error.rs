//! Errors of the query crate.

use datafusion::error::DataFusionError;

/// Result alias for the query crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong answering a query.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading an object of the store (a commit manifest) failed.
    #[error("{op} {key}: {source}")]
    Object {
        /// The operation (`list`, `get`).
        op: &'static str,
        /// The object key or prefix.
        key: String,
        /// The object store's error.
        #[source]
        source: object_store::Error,
    },
    /// A commit manifest could not be read.
    #[error("commit manifest {key} is not valid: {reason}")]
    Manifest {
        /// The commit's key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The statement would change data or the catalog: the audit log is read-only.
    #[error(
        "the audit log is read-only: only queries (SELECT, WITH, EXPLAIN, SHOW, DESCRIBE, SET) are allowed; refused: {0}"
    )]
    ReadOnly(String),
    /// A report query returned something the report cannot read (a column missing or of an
    /// unexpected type): a bug in the report's SQL, or a store written with another schema.
    #[error("report query {query} returned an unexpected result: {reason}")]
    UnexpectedResult {
        /// Which report query.
        query: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// A report's worker task failed (panicked or was cancelled): a bug, not bad input.
    #[error("report task failed: {0}")]
    Task(String),
    /// The cluster (`--cluster`) cannot be used as asked: a scheduler URL that is not
    /// `df://HOST:PORT`, or a store URL the cluster cannot address.
    #[error("cluster: {0}")]
    Cluster(String),
    /// Planning or running the query failed (SQL syntax, unknown column, type error, …).
    /// [`DataFusionError::diagnostic`] may locate it in the SQL: see [`crate::render_error`].
    #[error(transparent)]
    DataFusion(#[from] Box<DataFusionError>),
}

impl From<DataFusionError> for Error {
    fn from(e: DataFusionError) -> Self {
        Error::DataFusion(Box::new(e))
    }
}

impl From<datafusion::arrow::error::ArrowError> for Error {
    fn from(e: datafusion::arrow::error::ArrowError) -> Self {
        Error::from(DataFusionError::from(e))
    }
}

impl Error {
    pub(crate) fn object(
        op: &'static str,
        key: impl Into<String>,
        source: object_store::Error,
    ) -> Self {
        Error::Object {
            op,
            key: key.into(),
            source,
        }
    }

    /// The DataFusion error, if this is one.
    pub fn datafusion(&self) -> Option<&DataFusionError> {
        match self {
            Error::DataFusion(e) => Some(e),
            _ => None,
        }
    }
}
