//! Rows kept as columns: one little-endian buffer per column, the layout ClickHouse's Native
//! format and numpy read as they are.

use thiserror::Error;

/// A column's type. Widths: u8 1, u16 2, u32 4, u64 8, i64 8 bytes, little endian.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColKind {
    U8,
    U16,
    U32,
    U64,
    I64,
}

impl ColKind {
    pub fn width(self) -> usize {
        match self {
            ColKind::U8 => 1,
            ColKind::U16 => 2,
            ColKind::U32 => 4,
            ColKind::U64 | ColKind::I64 => 8,
        }
    }

    /// The one-letter code of the Python binding (`struct` module letters).
    pub fn from_code(c: u8) -> Option<ColKind> {
        match c {
            b'B' => Some(ColKind::U8),
            b'H' => Some(ColKind::U16),
            b'I' => Some(ColKind::U32),
            b'Q' => Some(ColKind::U64),
            b'q' => Some(ColKind::I64),
            _ => None,
        }
    }
}

/// One value of a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Val {
    U8(u8),
    U16(u16),
    U32(u32),
    U64(u64),
    I64(i64),
}

#[derive(Debug, PartialEq, Eq, Error)]
pub enum TableError {
    #[error("row has {got} values, the table {want} columns")]
    Arity { got: usize, want: usize },
    #[error("column {col}: {got} bytes is not {rows} rows of {width} bytes")]
    ColumnLength {
        col: usize,
        got: usize,
        rows: usize,
        width: usize,
    },
    #[error("unknown column kind code {0:?}")]
    Kind(char),
}

/// A table's pending rows, column by column.
#[derive(Clone, Debug, Default)]
pub struct Table {
    pub cols: Vec<Vec<u8>>,
    pub rows: usize,
}

impl Table {
    pub fn new(columns: usize) -> Table {
        Table {
            cols: vec![Vec::new(); columns],
            rows: 0,
        }
    }

    /// Append one row; `vals` are in column order (the caller's schema, checked by tests).
    #[inline]
    pub fn push(&mut self, vals: &[Val]) {
        debug_assert_eq!(vals.len(), self.cols.len());
        for (col, v) in self.cols.iter_mut().zip(vals) {
            match *v {
                Val::U8(x) => col.push(x),
                Val::U16(x) => col.extend_from_slice(&x.to_le_bytes()),
                Val::U32(x) => col.extend_from_slice(&x.to_le_bytes()),
                Val::U64(x) => col.extend_from_slice(&x.to_le_bytes()),
                Val::I64(x) => col.extend_from_slice(&x.to_le_bytes()),
            }
        }
        self.rows += 1;
    }

    /// Hand over the rows (the table is empty afterwards).
    pub fn take(&mut self) -> Table {
        let n = self.cols.len();
        std::mem::replace(self, Table::new(n))
    }
}
