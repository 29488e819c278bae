//! What each column of `audit_log` means (`\d audit_log`), from core's [`COLUMNS`].

use genai_audit_core::schema::column;

use crate::table::{DT_COLUMN, audit_log_schema};

/// One column of `audit_log`, for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    /// Column name.
    pub name: String,
    /// SQL-ish type (`STRING`, `TIMESTAMP(µs, UTC)`, `DECIMAL(38,12)`, …).
    pub sql_type: String,
    /// Whether it may be NULL.
    pub nullable: bool,
    /// Group (identity, who, what, when, usage, cost, outcome, privacy, other, partition).
    pub group: String,
    /// What it means.
    pub description: String,
}

/// Meaning of the `dt` partition column (not a column of the record: it is the directory).
pub const DT_DESCRIPTION: &str = "Partition: the UTC date of start_time (`dt=` directory). A filter on start_time prunes days by itself; filtering on dt as well is not needed.";

/// The columns of `audit_log` in table order: the file's columns, then `tenant` and `dt`.
pub fn audit_log_columns() -> Vec<ColumnInfo> {
    audit_log_schema()
        .fields()
        .iter()
        .map(|f| match column(f.name()) {
            Some(c) => ColumnInfo {
                name: c.name.to_owned(),
                sql_type: c.ty.sql_name().to_owned(),
                nullable: c.nullable,
                group: if c.name == "tenant" {
                    "partition".to_owned()
                } else {
                    c.group.to_owned()
                },
                description: c.description.to_owned(),
            },
            None if f.name() == DT_COLUMN => ColumnInfo {
                name: DT_COLUMN.to_owned(),
                sql_type: "DATE".to_owned(),
                nullable: false,
                group: "partition".to_owned(),
                description: DT_DESCRIPTION.to_owned(),
            },
            None => ColumnInfo {
                name: f.name().clone(),
                sql_type: f.data_type().to_string(),
                nullable: f.is_nullable(),
                group: String::new(),
                description: String::new(),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use genai_audit_core::schema::COLUMNS;

    use super::*;

    #[test]
    fn every_core_column_is_described_once_and_dt_is_added() {
        let cols = audit_log_columns();
        assert_eq!(cols.len(), COLUMNS.len() + 1);
        assert!(cols.iter().all(|c| !c.description.is_empty()));
        let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(&names[names.len() - 2..], ["tenant", "dt"]);
    }
}
