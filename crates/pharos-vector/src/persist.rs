//! The binary form of an index, so that a service can write it to a file and read it back at
//! start instead of rebuilding it (an HNSW graph costs minutes to build, seconds to read).
//! [`Encoder`] and [`Decoder`] write and read little-endian numbers and length-prefixed arrays;
//! each index kind encodes its own structure with them (`encode` / `decode` beside its type),
//! and [`VectorIndex::to_bytes`] / [`VectorIndex::from_bytes`] frame the whole. Parts derived
//! from others (norms, lookup layouts, id maps) are not written; they are rebuilt on reading.
//! A decoder checks every length against what remains, so a truncated or damaged file gives
//! [`VectorError::Corrupt`], never a panic or a huge allocation.

use crate::{IndexKind, Metric, Result, VectorError, VectorIndex};

/// The first bytes of an encoded index.
const MAGIC: &[u8; 8] = b"PHRSVIDX";
/// Bumped whenever the layout changes; an older or newer layout is refused (and rebuilt).
const FORMAT: u32 = 1;

/// Writes numbers and arrays, little-endian.
#[derive(Debug, Default)]
pub struct Encoder {
    bytes: Vec<u8>,
}

impl Encoder {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(capacity),
        }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    pub fn u8(&mut self, value: u8) {
        self.bytes.push(value);
    }

    pub fn u32(&mut self, value: u32) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    pub fn u64(&mut self, value: u64) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    pub fn usize(&mut self, value: usize) {
        self.u64(value as u64);
    }

    pub fn bytes(&mut self, values: &[u8]) {
        self.usize(values.len());
        self.bytes.extend_from_slice(values);
    }

    pub fn str(&mut self, value: &str) {
        self.bytes(value.as_bytes());
    }

    pub fn f32s(&mut self, values: &[f32]) {
        self.numbers(values, f32::to_le_bytes);
    }

    pub fn u64s(&mut self, values: &[u64]) {
        self.numbers(values, u64::to_le_bytes);
    }

    pub fn u32s(&mut self, values: &[u32]) {
        self.numbers(values, u32::to_le_bytes);
    }

    pub fn u16s(&mut self, values: &[u16]) {
        self.numbers(values, u16::to_le_bytes);
    }

    /// [`Encoder::f32s`] of the concatenation of `parts`, which hold `count` values in all,
    /// without gathering them first.
    pub fn f32s_in_parts<'v>(&mut self, count: usize, parts: impl Iterator<Item = &'v [f32]>) {
        self.numbers_in_parts(count, parts, f32::to_le_bytes);
    }

    /// [`Encoder::u32s`] of the concatenation of `parts`, like [`Encoder::f32s_in_parts`].
    pub fn u32s_in_parts<'v>(&mut self, count: usize, parts: impl Iterator<Item = &'v [u32]>) {
        self.numbers_in_parts(count, parts, u32::to_le_bytes);
    }

    /// A length, then each of `values` as `N` little-endian bytes.
    fn numbers<T: Copy, const N: usize>(&mut self, values: &[T], bytes_of: fn(T) -> [u8; N]) {
        self.numbers_in_parts(values.len(), std::iter::once(values), bytes_of);
    }

    /// [`Encoder::numbers`] of the concatenation of `parts`, `count` values in all.
    fn numbers_in_parts<'v, T: Copy + 'v, const N: usize>(
        &mut self,
        count: usize,
        parts: impl Iterator<Item = &'v [T]>,
        bytes_of: fn(T) -> [u8; N],
    ) {
        self.usize(count);
        self.bytes.reserve(count * N);
        let before = self.bytes.len();
        for part in parts {
            for &value in part {
                self.bytes.extend_from_slice(&bytes_of(value));
            }
        }
        debug_assert_eq!(
            self.bytes.len() - before,
            count * N,
            "parts hold `count` values"
        );
    }

    pub(crate) fn metric(&mut self, metric: Metric) {
        self.u8(match metric {
            Metric::InnerProduct => 0,
            Metric::L2 => 1,
            Metric::Cosine => 2,
        });
    }
}

/// Reads what an [`Encoder`] wrote, checking every length against the bytes left.
#[derive(Debug)]
pub struct Decoder<'a> {
    bytes: &'a [u8],
}

impl<'a> Decoder<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn take(&mut self, count: usize) -> Result<&'a [u8]> {
        if count > self.bytes.len() {
            return Err(corrupt(format!(
                "{count} bytes expected, {} left",
                self.bytes.len()
            )));
        }
        let (head, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub fn usize(&mut self) -> Result<usize> {
        usize::try_from(self.u64()?).map_err(|_| corrupt("a length beyond this machine's"))
    }

    /// A length of elements of `width` bytes, checked against what is left.
    fn length(&mut self, width: usize) -> Result<usize> {
        let count = self.usize()?;
        if count.saturating_mul(width) > self.bytes.len() {
            return Err(corrupt(format!(
                "an array of {count} elements of {width} bytes in {} bytes left",
                self.bytes.len()
            )));
        }
        Ok(count)
    }

    pub fn bytes(&mut self) -> Result<&'a [u8]> {
        let count = self.length(1)?;
        self.take(count)
    }

    pub fn str(&mut self) -> Result<&'a str> {
        std::str::from_utf8(self.bytes()?).map_err(|_| corrupt("text that is not UTF-8"))
    }

    pub fn f32s(&mut self) -> Result<Vec<f32>> {
        self.numbers(f32::from_le_bytes)
    }

    pub fn u64s(&mut self) -> Result<Vec<u64>> {
        self.numbers(u64::from_le_bytes)
    }

    pub fn u32s(&mut self) -> Result<Vec<u32>> {
        self.numbers(u32::from_le_bytes)
    }

    pub fn u16s(&mut self) -> Result<Vec<u16>> {
        self.numbers(u16::from_le_bytes)
    }

    /// What [`Encoder::f32s`] or [`Encoder::u32s`] wrote, left as little-endian words for the
    /// caller to place where they belong (`u32::from_le_bytes` of an `f32` gives its bits).
    pub fn words(&mut self) -> Result<&'a [[u8; 4]]> {
        let count = self.length(4)?;
        Ok(self.take(count * 4)?.as_chunks::<4>().0)
    }

    /// What [`Encoder::numbers`] wrote: a length, then that many `N`-byte numbers.
    fn numbers<T, const N: usize>(&mut self, from_bytes: fn([u8; N]) -> T) -> Result<Vec<T>> {
        let count = self.length(N)?;
        Ok(self
            .take(count * N)?
            .chunks_exact(N)
            .map(|chunk| {
                let mut array = [0u8; N];
                array.copy_from_slice(chunk);
                from_bytes(array)
            })
            .collect())
    }

    pub(crate) fn metric(&mut self) -> Result<Metric> {
        match self.u8()? {
            0 => Ok(Metric::InnerProduct),
            1 => Ok(Metric::L2),
            2 => Ok(Metric::Cosine),
            other => Err(corrupt(format!("unknown metric {other}"))),
        }
    }
}

/// A [`VectorError::Corrupt`] saying what was wrong.
pub(crate) fn corrupt(what: impl Into<String>) -> VectorError {
    VectorError::Corrupt(what.into())
}

impl VectorIndex {
    /// The index in its binary form (see the module documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Encoder::with_capacity(self.memory_bytes() + 64);
        out.bytes.extend_from_slice(MAGIC);
        out.u32(FORMAT);
        match self {
            VectorIndex::Flat(index) => {
                out.u8(0);
                index.encode(&mut out);
            }
            VectorIndex::IvfPq(index) => {
                out.u8(1);
                index.encode(&mut out);
            }
            VectorIndex::Hnsw(index) => {
                out.u8(2);
                index.encode(&mut out);
            }
        }
        out.into_bytes()
    }

    /// An index read back from [`VectorIndex::to_bytes`]; refused unless it is of `kind`,
    /// `dimension` and `metric` (what the caller's definition says it should be).
    pub fn from_bytes(
        bytes: &[u8],
        dimension: usize,
        metric: Metric,
        kind: IndexKind,
    ) -> Result<Self> {
        let mut input = Decoder::new(bytes);
        if input.take(MAGIC.len())? != MAGIC {
            return Err(corrupt("not an encoded index"));
        }
        let format = input.u32()?;
        if format != FORMAT {
            return Err(corrupt(format!(
                "layout {format}; this build reads layout {FORMAT}"
            )));
        }
        let index = match (input.u8()?, kind) {
            (0, IndexKind::Flat) => VectorIndex::Flat(crate::FlatIndex::decode(&mut input)?),
            (1, IndexKind::IvfPq(params)) => {
                let index = crate::IvfPqIndex::decode(&mut input)?;
                if index.params() != params {
                    return Err(corrupt("IVF-PQ parameters differ from the definition"));
                }
                VectorIndex::IvfPq(index)
            }
            (2, IndexKind::Hnsw(params)) => {
                let index = crate::HnswIndex::decode(&mut input)?;
                if index.params() != params {
                    return Err(corrupt("HNSW parameters differ from the definition"));
                }
                VectorIndex::Hnsw(index)
            }
            (tag, _) => {
                return Err(corrupt(format!(
                    "index kind {tag} differs from the definition"
                )));
            }
        };
        if !input.is_empty() {
            return Err(corrupt("bytes left after the index"));
        }
        if index.dimension() != dimension || index.metric() != metric {
            return Err(corrupt(format!(
                "dimension {} and metric {:?}; the definition says {dimension} and {metric:?}",
                index.dimension(),
                index.metric()
            )));
        }
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HnswParams, IvfPqParams, SearchParams};
    use rand::{Rng, SeedableRng};

    fn filled(kind: IndexKind, metric: Metric) -> VectorIndex {
        let mut random = rand::rngs::SmallRng::seed_from_u64(7);
        let mut index = VectorIndex::new(16, metric, kind).expect("index");
        for id in 0..3_000u64 {
            let vector: Vec<f32> = (0..16).map(|_| random.random_range(-1.0..1.0)).collect();
            index.upsert(id * 3, &vector).expect("upsert");
        }
        for id in (0..300u64).map(|id| id * 9) {
            index.remove(id);
        }
        if matches!(kind, IndexKind::IvfPq(_)) {
            index.train(1, &mut |_| {}).expect("train");
        }
        index
    }

    #[test]
    fn every_kind_reads_back_answering_the_same() {
        let kinds = [
            IndexKind::Flat,
            IndexKind::IvfPq(IvfPqParams { nlist: 8, m: 4 }),
            IndexKind::Hnsw(HnswParams {
                m: 8,
                ef_construction: 40,
            }),
        ];
        for kind in kinds {
            for metric in [Metric::InnerProduct, Metric::L2, Metric::Cosine] {
                let index = filled(kind, metric);
                let bytes = index.to_bytes();
                let read = VectorIndex::from_bytes(&bytes, 16, metric, kind).expect("read back");
                assert_eq!(read.len(), index.len(), "{kind:?} {metric:?}");
                assert_eq!(
                    read.to_bytes(),
                    bytes,
                    "{kind:?} {metric:?} re-encodes the same"
                );
                let params = SearchParams {
                    nprobe: 4,
                    rerank: 2,
                    ef_search: 32,
                };
                let query = [0.25f32; 16];
                assert_eq!(
                    read.search(&query, 10, params, None).expect("search"),
                    index.search(&query, 10, params, None).expect("search"),
                    "{kind:?} {metric:?}"
                );
                // Both go on the same way after reading: the same writes give the same index.
                let (mut read, mut index) = (read, index);
                for id in 10_000..10_050u64 {
                    let vector = [id as f32 / 10_000.0; 16];
                    read.upsert(id, &vector).expect("upsert");
                    index.upsert(id, &vector).expect("upsert");
                }
                assert_eq!(read.to_bytes(), index.to_bytes(), "{kind:?} {metric:?}");
            }
        }
    }

    #[test]
    fn damaged_bytes_are_refused_not_panicked_on() {
        let kind = IndexKind::Hnsw(HnswParams {
            m: 8,
            ef_construction: 40,
        });
        let bytes = filled(kind, Metric::L2).to_bytes();
        for cut in [0, 5, 13, 100, bytes.len() / 2, bytes.len() - 1] {
            let error = VectorIndex::from_bytes(&bytes[..cut], 16, Metric::L2, kind)
                .expect_err("truncated");
            assert!(matches!(error, VectorError::Corrupt(_)), "{error}");
        }
        assert!(VectorIndex::from_bytes(&bytes, 16, Metric::L2, IndexKind::Flat).is_err());
        assert!(VectorIndex::from_bytes(&bytes, 8, Metric::L2, kind).is_err());
        assert!(VectorIndex::from_bytes(&bytes, 16, Metric::Cosine, kind).is_err());
        let mut flipped = bytes.clone();
        flipped[8] ^= 0xff;
        assert!(VectorIndex::from_bytes(&flipped, 16, Metric::L2, kind).is_err());
    }
}
