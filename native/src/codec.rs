//! Little-endian byte writer and bounds-checked reader, and the FNV-1a checksum, shared by the
//! snapshot formats (`book::snapshot`, `risk::snapshot`). Each format adds its own record methods
//! to `Writer`/`Reader` and turns `Truncated` into its own error type.

/// Appends little-endian values.
pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    pub(crate) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn i128(&mut self, v: i128) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// An item count as u32 (saturating; no snapshot holds 2^32 items of anything).
    pub(crate) fn count(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }
}

/// The input ended before the value being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Truncated;

/// Reads little-endian values from the front of a slice; never reads past its end.
pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl Reader<'_> {
    pub(crate) fn take<const N: usize>(&mut self) -> Result<[u8; N], Truncated> {
        let (head, rest) = self.0.split_first_chunk::<N>().ok_or(Truncated)?;
        self.0 = rest;
        Ok(*head)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, Truncated> {
        Ok(u8::from_le_bytes(self.take()?))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, Truncated> {
        Ok(u32::from_le_bytes(self.take()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, Truncated> {
        Ok(u64::from_le_bytes(self.take()?))
    }
    pub(crate) fn i64(&mut self) -> Result<i64, Truncated> {
        Ok(i64::from_le_bytes(self.take()?))
    }
    pub(crate) fn i128(&mut self) -> Result<i128, Truncated> {
        Ok(i128::from_le_bytes(self.take()?))
    }
    /// A count of items of at least `size` bytes each, refused if the bytes left cannot hold
    /// them (so a corrupt count never drives a huge allocation or loop).
    pub(crate) fn count(&mut self, size: usize) -> Result<usize, Truncated> {
        let n = self.u32()? as usize;
        if n.saturating_mul(size) > self.0.len() {
            return Err(Truncated);
        }
        Ok(n)
    }
}

/// FNV-1a, 64 bit.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
