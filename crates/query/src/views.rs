//! Comparing strings of a `Utf8View` array without reading them when their views decide.

use datafusion::arrow::array::StringViewArray;

/// Whether rows `a` and `b` of `array` hold the same string. Equal views (the usual case for
/// repeated values: Parquet decodes a dictionary page into views of the dictionary) are equal
/// strings; views whose low 64 bits (length and first 4 bytes) differ are different strings;
/// only otherwise are the strings compared.
pub(crate) fn same_string(array: &StringViewArray, a: usize, b: usize) -> bool {
    let views = array.views();
    let (va, vb) = (views[a], views[b]);
    va == vb || (va as u64 == vb as u64 && array.value(a) == array.value(b))
}
