//! PostgreSQL binary COPY (`COPY ... FROM STDIN (FORMAT binary)`) built from column buffers.
//!
//! Layout: the 11-byte signature, flags i32 0, header extension length i32 0; per row the field
//! count i16 and per field its length i32 and its value (network byte order); a trailer i16 -1.
//! Column kinds map to PostgreSQL types as the migrations declare them: u8 -> smallint,
//! u16/u32 -> integer, u64/i64 -> bigint (u64 ids: the same 64 bits), the leading text column
//! (the symbol) -> its UTF-8 bytes.

use super::table::{ColKind, TableError};

const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// The whole COPY stream of `rows` rows: `text` first, then `cols` (little-endian buffers of
/// `kinds`). Errors if a buffer does not hold exactly `rows` values.
pub fn pgcopy(
    text: &[u8],
    kinds: &[ColKind],
    cols: &[&[u8]],
    rows: usize,
) -> Result<Vec<u8>, TableError> {
    if kinds.len() != cols.len() {
        return Err(TableError::Arity {
            got: cols.len(),
            want: kinds.len(),
        });
    }
    for (i, (k, c)) in kinds.iter().zip(cols).enumerate() {
        if c.len() != rows * k.width() {
            return Err(TableError::ColumnLength {
                col: i,
                got: c.len(),
                rows,
                width: k.width(),
            });
        }
    }
    let fields = u16::try_from(cols.len() + 1).map_err(|_| TableError::Arity {
        got: cols.len(),
        want: i16::MAX as usize,
    })?;
    let text_len = i32::try_from(text.len()).map_err(|_| TableError::ColumnLength {
        col: 0,
        got: text.len(),
        rows: 1,
        width: i32::MAX as usize,
    })?;
    let row_bytes: usize = 2
        + 4
        + text.len()
        + kinds
            .iter()
            .map(|k| 4 + pg_width(*k) as usize)
            .sum::<usize>();
    let mut out = Vec::with_capacity(19 + rows * row_bytes + 2);
    out.extend_from_slice(SIGNATURE);
    out.extend_from_slice(&0i32.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes());
    for r in 0..rows {
        out.extend_from_slice(&fields.to_be_bytes());
        out.extend_from_slice(&text_len.to_be_bytes());
        out.extend_from_slice(text);
        for (k, c) in kinds.iter().zip(cols) {
            let w = k.width();
            let v = &c[r * w..(r + 1) * w];
            out.extend_from_slice(&pg_width(*k).to_be_bytes());
            match k {
                ColKind::U8 => out.extend_from_slice(&i16::from(v[0]).to_be_bytes()),
                ColKind::U16 => out
                    .extend_from_slice(&i32::from(u16::from_le_bytes([v[0], v[1]])).to_be_bytes()),
                ColKind::U32 => {
                    let x = u32::from_le_bytes([v[0], v[1], v[2], v[3]]);
                    // integer is signed 32-bit: values above i32::MAX keep their bits
                    out.extend_from_slice(&x.to_be_bytes())
                }
                ColKind::U64 | ColKind::I64 => {
                    out.extend(v.iter().rev());
                }
            }
        }
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    Ok(out)
}

fn pg_width(k: ColKind) -> i32 {
    match k {
        ColKind::U8 => 2,
        ColKind::U16 | ColKind::U32 => 4,
        ColKind::U64 | ColKind::I64 => 8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_is_encoded_big_endian_with_lengths() {
        let a = [7u8];
        let b = 300u16.to_le_bytes();
        let c = (-2i64).to_le_bytes();
        let out = pgcopy(
            b"AB",
            &[ColKind::U8, ColKind::U16, ColKind::I64],
            &[&a, &b, &c],
            1,
        )
        .unwrap();
        let mut want = SIGNATURE.to_vec();
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        want.extend_from_slice(&[0, 4, 0, 0, 0, 2, b'A', b'B']);
        want.extend_from_slice(&[0, 0, 0, 2, 0, 7]);
        want.extend_from_slice(&[0, 0, 0, 4, 0, 0, 1, 44]);
        want.extend_from_slice(&[0, 0, 0, 8, 255, 255, 255, 255, 255, 255, 255, 254]);
        want.extend_from_slice(&[255, 255]);
        assert_eq!(out, want);
    }

    #[test]
    fn a_short_column_is_an_error() {
        let a = [1u8, 2];
        let b = [0u8; 8];
        let err = pgcopy(b"X", &[ColKind::U8, ColKind::U64], &[&a, &b], 2).unwrap_err();
        assert_eq!(
            err,
            TableError::ColumnLength {
                col: 1,
                got: 8,
                rows: 2,
                width: 8
            }
        );
    }
}
