//! [`FlatIndex`]: exact search over every stored vector. Vectors live in one contiguous
//! row-major buffer; ids are the caller's (`u64`), and upserting an existing id replaces its
//! vector in place. Rows are padded with zeros to a multiple of eight values, so no kernel has a
//! scalar tail. A single query over long rows is one scan, one row at a time with explicit SIMD.
//! Short rows (under 64 values, the documents' 52 among them) are also kept in tiles of 16 rows
//! stored dimension by dimension: a query value multiplies 16 rows in two registers, with no
//! sum across a register and no padding read. A batch of 8 queries or more is
//! answered with matrix products of the queries against blocks of the base (faer's
//! cache-blocked GEMM, [`kernel::products`]); smaller batches read each block of the base once
//! for a group of queries, four queries per load of a base vector.

use std::collections::HashMap;

use multiversion::multiversion;

use crate::kernel::{self, dot, normalized};
use crate::pages::Pages;
use crate::persist::{Decoder, Encoder, corrupt};
use crate::topk::TopK;
use crate::{Filter, Hit, MAX_DIMENSION, Metric, Result, VectorError, check_vector};

/// Base vectors scored per block of a batch (about 64 KiB of base at dimension 128).
const BASE_BLOCK: usize = 128;
/// The dimension from which a single query reads one row at a time (one memory stream, scored
/// with explicit SIMD) and no tiles are kept: on 200k x 128 the rows stream at the memory's
/// bandwidth, while on short rows the sum across each register costs as much as the reads.
const LONG_ROWS: usize = 64;
/// Rows per tile of the short-row layout (see [`Tiles`]).
const TILE_ROWS: usize = 16;
/// Tiles scored together: their sums are independent chains of multiply-adds.
const TILE_GROUP: usize = 4;
/// Queries that share one pass over a base block.
const QUERY_GROUP: usize = 16;
/// Queries from which a batch is answered with matrix products.
const MATRIX_BATCH: usize = 8;
/// Base rows per matrix product.
const MATRIX_BLOCK: usize = 512;

#[derive(Debug, Clone)]
pub struct FlatIndex {
    dimension: usize,
    /// The length of a stored row: the dimension rounded up to a multiple of 8 with zeros, so
    /// that every kernel runs whole vector registers with no scalar tail.
    stride: usize,
    metric: Metric,
    ids: Vec<u64>,
    /// `ids.len() * stride` values, row `i` belonging to `ids[i]`.
    data: Pages<f32>,
    rows: HashMap<u64, usize>,
    /// The squared norm of each row, for L2 batches computed as matrix products.
    norms: Vec<f32>,
    /// Short rows only: the same vectors in tiles, for single queries.
    tiles: Option<Tiles>,
}

/// The vectors of a [`FlatIndex`] with short rows, by tiles of [`TILE_ROWS`] rows stored
/// dimension by dimension: value `d` of row `r` is at `tile(r) + d * TILE_ROWS + r % TILE_ROWS`.
/// Slots past the last row are zero. Costs a second copy of the vectors, which at these
/// dimensions is what it takes to score at the speed of reading them.
#[derive(Debug, Clone, Default)]
struct Tiles {
    values: Pages<f32>,
}

impl Tiles {
    /// Writes `vector` as row `row`, adding a tile when the row starts one.
    fn write(&mut self, row: usize, vector: &[f32]) {
        let dimension = vector.len();
        let start = row / TILE_ROWS * TILE_ROWS * dimension;
        if self.values.len() < start + TILE_ROWS * dimension {
            self.values.resize(start + TILE_ROWS * dimension, 0.0);
        }
        let tile = &mut self.values[start..start + TILE_ROWS * dimension];
        for (slot, &value) in tile
            .iter_mut()
            .skip(row % TILE_ROWS)
            .step_by(TILE_ROWS)
            .zip(vector)
        {
            *slot = value;
        }
    }

    /// Keeps `rows` rows, the row just after them having been the last: zeroes its slots and
    /// drops a tile left empty.
    fn truncate(&mut self, rows: usize, dimension: usize) {
        let start = rows / TILE_ROWS * TILE_ROWS * dimension;
        if rows.is_multiple_of(TILE_ROWS) {
            self.values.truncate(start);
            return;
        }
        for slot in self.values[start..]
            .iter_mut()
            .skip(rows % TILE_ROWS)
            .step_by(TILE_ROWS)
        {
            *slot = 0.0;
        }
    }
}

impl FlatIndex {
    pub fn new(dimension: usize, metric: Metric) -> Result<Self> {
        if dimension == 0 || dimension > MAX_DIMENSION {
            return Err(VectorError::InvalidDimension(dimension));
        }
        Ok(Self {
            dimension,
            stride: dimension.next_multiple_of(8),
            metric,
            ids: Vec::new(),
            data: Pages::new(),
            rows: HashMap::new(),
            norms: Vec::new(),
            tiles: (dimension < LONG_ROWS).then(Tiles::default),
        })
    }

    /// An index that only stores vectors (IVF-PQ's, for training and re-ranking): no tiles, so
    /// the vectors are held once; a search reads the rows.
    pub(crate) fn storage(dimension: usize, metric: Metric) -> Result<Self> {
        let mut index = Self::new(dimension, metric)?;
        index.tiles = None;
        Ok(index)
    }

    pub fn dimension(&self) -> usize {
        self.dimension
    }

    pub fn metric(&self) -> Metric {
        self.metric
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Bytes held by the vectors and ids.
    pub fn memory_bytes(&self) -> usize {
        let tiles = self
            .tiles
            .as_ref()
            .map_or(0, |tiles| tiles.values.memory_bytes());
        self.data.memory_bytes()
            + tiles
            + self.norms.capacity() * std::mem::size_of::<f32>()
            + self.ids.capacity() * std::mem::size_of::<u64>()
            + self.rows.capacity() * (std::mem::size_of::<(u64, usize)>() + 1)
    }

    /// Stores `vector` under `id`, replacing what `id` held.
    pub fn upsert(&mut self, id: u64, vector: &[f32]) -> Result<()> {
        let stored = self.padded(vector)?;
        let row = match self.rows.get(&id) {
            Some(&row) => {
                self.data[row * self.stride..(row + 1) * self.stride].copy_from_slice(&stored);
                self.norms[row] = dot(&stored, &stored);
                row
            }
            None => {
                self.rows.insert(id, self.ids.len());
                self.ids.push(id);
                self.norms.push(dot(&stored, &stored));
                self.data.extend_from_slice(&stored);
                self.ids.len() - 1
            }
        };
        if let Some(tiles) = &mut self.tiles {
            tiles.write(row, &stored[..self.dimension]);
        }
        Ok(())
    }

    /// Removes `id`; returns whether it was there. The last row moves into its place.
    pub fn remove(&mut self, id: u64) -> bool {
        let Some(row) = self.rows.remove(&id) else {
            return false;
        };
        let last = self.ids.len() - 1;
        if row != last {
            let moved = self.ids[last];
            self.ids[row] = moved;
            self.rows.insert(moved, row);
            let (head, tail) = self.data.split_at_mut(last * self.stride);
            head[row * self.stride..(row + 1) * self.stride].copy_from_slice(tail);
            self.norms[row] = self.norms[last];
            if let Some(tiles) = &mut self.tiles {
                tiles.write(row, &tail[..self.dimension]);
            }
        }
        self.ids.pop();
        self.norms.pop();
        self.data.truncate(last * self.stride);
        if let Some(tiles) = &mut self.tiles {
            tiles.truncate(last, self.dimension);
        }
        true
    }

    /// The row holding `id`; rows stay put until a removal moves the last row into a gap.
    pub(crate) fn row_of(&self, id: u64) -> Option<usize> {
        self.rows.get(&id).copied()
    }

    /// The id in `row`, if there is one.
    pub(crate) fn id_at(&self, row: usize) -> Option<u64> {
        self.ids.get(row).copied()
    }

    /// The vector in `row` (see [`FlatIndex::row_of`]).
    pub(crate) fn row(&self, row: usize) -> &[f32] {
        let start = row * self.stride;
        &self.data[start..start + self.dimension]
    }

    /// The vector stored under `id` (normalized, for cosine).
    pub fn get(&self, id: u64) -> Option<&[f32]> {
        Some(self.row(self.row_of(id)?))
    }

    /// The `k` nearest vectors to `query` among those `filter` accepts, best first.
    pub fn search(&self, query: &[f32], k: usize, filter: Option<Filter>) -> Result<Vec<Hit>> {
        if k == 0 {
            return Err(VectorError::InvalidK);
        }
        let query = self.padded(query)?;
        let mut top = TopK::new(k.min(self.len()));
        match &self.tiles {
            Some(tiles) => pulp::Arch::new().dispatch(TileScan {
                l2: self.metric == Metric::L2,
                query: &query[..self.dimension],
                tiles: &tiles.values,
                ids: &self.ids,
                top: &mut top,
                filter,
            }),
            None => scan(self.metric, &query, &self.data, &self.ids, &mut top, filter),
        }
        Ok(self.hits(top))
    }

    /// The `k` nearest vectors to each of `queries` (each of the index's dimension) among those
    /// `filter` accepts, best first.
    pub fn search_batch(
        &self,
        queries: &[Vec<f32>],
        k: usize,
        filter: Option<Filter>,
    ) -> Result<Vec<Vec<Hit>>> {
        if k == 0 {
            return Err(VectorError::InvalidK);
        }
        let prepared: Vec<Vec<f32>> = queries
            .iter()
            .map(|query| self.padded(query))
            .collect::<Result<_>>()?;
        if prepared.len() >= MATRIX_BATCH {
            return self.search_batch_by_matrix(&prepared, k, filter);
        }
        let mut answers = Vec::with_capacity(prepared.len());
        for group in prepared.chunks(QUERY_GROUP) {
            let mut tops: Vec<TopK> = group.iter().map(|_| TopK::new(k.min(self.len()))).collect();
            for (block, vectors) in self.data.chunks(BASE_BLOCK * self.stride).enumerate() {
                let ids = &self.ids[block * BASE_BLOCK..];
                scan_block(self.metric, group, &mut tops, ids, vectors, filter);
            }
            answers.extend(tops.into_iter().map(|top| self.hits(top)));
        }
        Ok(answers)
    }

    /// A batch as matrix products: the scores of all queries against a block of the base are one
    /// `block x queries^T` product ([`kernel::products`]: faer's packed, cache-blocked kernels,
    /// chosen for the CPU at run time), then each row of scores is offered to the queries'
    /// top-ks ([`OfferRows`]). L2 uses `|q - b|^2 = |q|^2 + |b|^2 - 2 <q, b>` with the norms
    /// kept per row.
    fn search_batch_by_matrix(
        &self,
        queries: &[Vec<f32>],
        k: usize,
        filter: Option<Filter>,
    ) -> Result<Vec<Vec<Hit>>> {
        // Padded rows and queries: the zeros add nothing to the products.
        let dimension = self.stride;
        let flat: Vec<f32> = queries.concat();
        let l2 = self.metric == Metric::L2;
        let mut tops: Vec<TopK> = queries
            .iter()
            .map(|_| TopK::new(k.min(self.len())))
            .collect();
        // Each query's threshold, kept beside its top-k (see `OfferRows`).
        let mut thresholds = vec![f32::NEG_INFINITY; queries.len()];
        let width = MATRIX_BLOCK.min(self.len().max(1));
        let mut scores = vec![0.0f32; queries.len() * width];
        for (block, vectors) in self.data.chunks(MATRIX_BLOCK * dimension).enumerate() {
            let rows = vectors.len() / dimension;
            let first = block * MATRIX_BLOCK;
            let products = &mut scores[..queries.len() * rows];
            let ids = &self.ids[first..first + rows];
            let norms = &self.norms[first..first + rows];
            // Base rows by queries (`block x queriesᵀ`): the many base rows fill the GEMM's tall
            // micro-kernel, which a few dozen queries would leave mostly empty; with hundreds of
            // queries the other orientation measured the same. Keys for L2 leave out |q|^2, the
            // same for every row: added back below.
            kernel::products(vectors, &flat, dimension, products);
            // The next block is asked to load while this one's rows are offered, so that the
            // next product finds it in cache instead of waiting on memory (about 1.3x at 32
            // queries, 1.4x at 8; a batch of hundreds is bound by arithmetic instead).
            let next_start = (first + rows) * dimension;
            let next = self
                .data
                .get(next_start..(next_start + MATRIX_BLOCK * dimension).min(self.data.len()))
                .unwrap_or(&[]);
            pulp::Arch::new().dispatch(OfferRows {
                next,
                dimension,
                products,
                l2,
                norms,
                ids,
                tops: &mut tops,
                thresholds: &mut thresholds,
                filter,
            });
        }
        Ok(tops
            .into_iter()
            .zip(queries)
            .map(|(top, query)| {
                let ranked = top.into_sorted();
                if !l2 {
                    return self.metric.hits(ranked);
                }
                let query_norm = dot(query, query);
                // Rounding can take an exact match slightly below zero.
                let ranked = ranked
                    .into_iter()
                    .map(|(key, id)| ((key - query_norm).min(0.0), id))
                    .collect();
                self.metric.hits(ranked)
            })
            .collect())
    }

    /// Every (id, vector) held, in storage order.
    pub fn rows(&self) -> impl Iterator<Item = (u64, &[f32])> + '_ {
        self.ids.iter().copied().zip(
            self.data
                .chunks_exact(self.stride)
                .map(|row| &row[..self.dimension]),
        )
    }

    /// A checked copy of `vector` as stored and compared: normalized for cosine.
    pub(crate) fn prepare(&self, vector: &[f32]) -> Result<Vec<f32>> {
        check_vector(vector, self.dimension)?;
        match self.metric {
            Metric::Cosine => normalized(vector).ok_or(VectorError::ZeroVector),
            Metric::InnerProduct | Metric::L2 => Ok(vector.to_vec()),
        }
    }

    /// [`FlatIndex::prepare`] padded with zeros to the stride of a stored row.
    fn padded(&self, vector: &[f32]) -> Result<Vec<f32>> {
        let mut prepared = self.prepare(vector)?;
        prepared.resize(self.stride, 0.0);
        Ok(prepared)
    }

    fn hits(&self, top: TopK) -> Vec<Hit> {
        self.metric.hits(top.into_sorted())
    }
}

impl FlatIndex {
    /// Writes the ids and vectors (see [`crate::persist`]).
    pub(crate) fn encode(&self, out: &mut Encoder) {
        out.usize(self.dimension);
        out.metric(self.metric);
        out.u64s(&self.ids);
        let rows: Vec<f32> = self
            .rows()
            .flat_map(|(_, row)| row.iter().copied())
            .collect();
        out.f32s(&rows);
    }

    /// Reads what [`FlatIndex::encode`] wrote; the norms, tiles and id map are rebuilt.
    pub(crate) fn decode(input: &mut Decoder<'_>) -> Result<Self> {
        let mut index = Self::new(input.usize()?, input.metric()?)?;
        index.decode_rows(input)?;
        Ok(index)
    }

    /// [`FlatIndex::decode`] of an index written as [`FlatIndex::storage`].
    pub(crate) fn decode_storage(input: &mut Decoder<'_>) -> Result<Self> {
        let mut index = Self::storage(input.usize()?, input.metric()?)?;
        index.decode_rows(input)?;
        Ok(index)
    }

    fn decode_rows(&mut self, input: &mut Decoder<'_>) -> Result<()> {
        let index = self;
        index.ids = input.u64s()?;
        let rows = input.f32s()?;
        if rows.len() != index.ids.len() * index.dimension {
            return Err(corrupt("flat vectors do not match their ids"));
        }
        index.data = Pages::with_capacity(index.ids.len() * index.stride);
        index.norms = Vec::with_capacity(index.ids.len());
        for (number, row) in rows.chunks_exact(index.dimension).enumerate() {
            if let Some(tiles) = &mut index.tiles {
                tiles.write(number, row);
            }
            index.data.extend_from_slice(row);
            index
                .data
                .resize(index.data.len() + index.stride - index.dimension, 0.0);
            index.norms.push(dot(row, row));
        }
        index.rows.reserve(index.ids.len());
        for (row, &id) in index.ids.iter().enumerate() {
            if index.rows.insert(id, row).is_some() {
                return Err(corrupt(format!("id {id} is stored twice")));
            }
        }
        Ok(())
    }
}

/// Scores every row of `data` (row-major, `ids[i]` owning row `i`) against `query` into `top`,
/// one row at a time with explicit SIMD.
fn scan(
    metric: Metric,
    query: &[f32],
    data: &[f32],
    ids: &[u64],
    top: &mut TopK,
    filter: Option<Filter>,
) {
    for (vector, &id) in data.chunks_exact(query.len()).zip(ids) {
        let key = metric.key_simd(query, vector);
        if key > top.threshold() && accepts(filter, id) {
            top.push(key, id);
        }
    }
}

/// A block's products with a batch of queries, base row by base row (`block x queriesᵀ`), into
/// the queries' top-ks with explicit SIMD: a row's keys are compared with every query's
/// threshold a register at a time, and only a row where some key beats its threshold is looked
/// at query by query.
struct OfferRows<'a> {
    /// The next block of base rows, asked to load while this one is offered.
    next: &'a [f32],
    dimension: usize,
    /// Row `r` holds the products of base row `r` with every query.
    products: &'a [f32],
    l2: bool,
    /// The squared norm of each base row (L2 keys are `2 <q, b> - |b|^2`).
    norms: &'a [f32],
    ids: &'a [u64],
    tops: &'a mut [TopK],
    /// `tops[q].threshold()`, refreshed whenever `tops[q]` changes.
    thresholds: &'a mut [f32],
    filter: Option<Filter<'a>>,
}

impl pulp::WithSimd for OfferRows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let Self {
            next,
            dimension,
            products,
            l2,
            norms,
            ids,
            tops,
            thresholds,
            filter,
        } = self;
        let two = simd.splat_f32s(2.0);
        let prefetch = kernel::Prefetch::new();
        let mut next_rows = next.chunks(dimension.max(1));
        for ((row, &id), &norm) in products.chunks_exact(tops.len()).zip(ids).zip(norms) {
            if let Some(upcoming) = next_rows.next() {
                prefetch.fetch_lines(upcoming);
            }
            let key_of = |product: f32| if l2 { 2.0 * product - norm } else { product };
            // Plain loops: a closure would be compiled without the instruction set chosen here.
            let (row_chunks, row_tail) = S::as_simd_f32s(row);
            let (threshold_chunks, threshold_tail) = S::as_simd_f32s(thresholds);
            let minus_norm = simd.splat_f32s(-norm);
            let mut margin = simd.splat_f32s(f32::NEG_INFINITY);
            for (&product, &threshold) in row_chunks.iter().zip(threshold_chunks) {
                let key = if l2 {
                    simd.mul_add_e_f32s(two, product, minus_norm)
                } else {
                    product
                };
                margin = simd.max_f32s(margin, simd.sub_f32s(key, threshold));
            }
            let mut beaten = simd.reduce_max_f32s(margin) > 0.0;
            for (&product, &threshold) in row_tail.iter().zip(threshold_tail) {
                beaten |= key_of(product) > threshold;
            }
            if !beaten {
                continue;
            }
            for ((&product, top), threshold) in
                row.iter().zip(tops.iter_mut()).zip(thresholds.iter_mut())
            {
                let key = key_of(product);
                if key > *threshold && accepts(filter, id) {
                    top.push(key, id);
                    *threshold = top.threshold();
                }
            }
        }
    }
}

/// A single query against [`Tiles`] into `top`, with explicit SIMD (pulp, dispatched at run
/// time): [`TILE_GROUP`] tiles at a time, each value of the query broadcast and multiplied with
/// the value of every row of the group at that dimension. A group whose best key does not beat
/// the top-k's threshold is dismissed with one comparison.
struct TileScan<'a> {
    l2: bool,
    /// The query, unpadded.
    query: &'a [f32],
    tiles: &'a [f32],
    /// Row `r` of the tiles belongs to `ids[r]`; slots past the end are padding.
    ids: &'a [u64],
    top: &'a mut TopK,
    filter: Option<Filter<'a>>,
}

impl pulp::WithSimd for TileScan<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let Self {
            l2,
            query,
            tiles,
            ids,
            top,
            filter,
        } = self;
        let tile_len = TILE_ROWS * query.len();
        let mut keys = [0.0f32; TILE_GROUP * TILE_ROWS];
        let groups = tiles.chunks_exact(TILE_GROUP * tile_len);
        let rest = groups.remainder();
        let mut first_row = 0;
        let mut offer = |keys: &[f32], best: f32, first_row: usize| {
            if best <= top.threshold() {
                return;
            }
            for (&key, &id) in keys.iter().zip(ids.get(first_row..).unwrap_or_default()) {
                if key > top.threshold() && accepts(filter, id) {
                    top.push(key, id);
                }
            }
        };
        for group in groups {
            let best = tile_keys::<S, TILE_GROUP>(simd, l2, query, group, &mut keys);
            offer(&keys, best, first_row);
            first_row += TILE_GROUP * TILE_ROWS;
        }
        for tile in rest.chunks_exact(tile_len) {
            let keys = &mut keys[..TILE_ROWS];
            let best = tile_keys::<S, 1>(simd, l2, query, tile, keys);
            offer(keys, best, first_row);
            first_row += TILE_ROWS;
        }
    }
}

/// The keys of the `TILES` tiles in `tiles` (row by row into `keys`) and the best of them.
#[inline(always)]
fn tile_keys<S: pulp::Simd, const TILES: usize>(
    simd: S,
    l2: bool,
    query: &[f32],
    tiles: &[f32],
    keys: &mut [f32],
) -> f32 {
    // A tile's slice of one dimension is TILE_ROWS / lanes registers (2 with AVX2).
    let per_tile = TILE_ROWS / (std::mem::size_of::<S::f32s>() / std::mem::size_of::<f32>());
    let tile_len = TILE_ROWS * query.len();
    let mut sums = [[simd.splat_f32s(0.0); TILE_ROWS]; TILES];
    for (d, &value) in query.iter().enumerate() {
        let value = simd.splat_f32s(value);
        for (tile, tile_sums) in sums.iter_mut().enumerate() {
            let (rows, _) = S::as_simd_f32s(&tiles[tile * tile_len + d * TILE_ROWS..][..TILE_ROWS]);
            for (sum, &row) in tile_sums[..per_tile].iter_mut().zip(rows) {
                *sum = if l2 {
                    let difference = simd.sub_f32s(row, value);
                    simd.mul_add_e_f32s(difference, difference, *sum)
                } else {
                    simd.mul_add_e_f32s(value, row, *sum)
                };
            }
        }
    }
    let mut best = simd.splat_f32s(f32::NEG_INFINITY);
    for (tile, tile_sums) in sums.iter().enumerate() {
        let (out, _) = S::as_mut_simd_f32s(&mut keys[tile * TILE_ROWS..][..TILE_ROWS]);
        for (slot, &sum) in out.iter_mut().zip(&tile_sums[..per_tile]) {
            // L2 distances become keys by negation: larger is closer.
            let key = if l2 { simd.neg_f32s(sum) } else { sum };
            best = simd.max_f32s(best, key);
            *slot = key;
        }
    }
    simd.reduce_max_f32s(best)
}

/// Scores one block of the base (`ids[i]` owning row `i` of `vectors`) against a group of
/// queries: four queries at a time share each load of a base vector. Compiled like [`scan`].
#[multiversion(targets("x86_64+avx2+fma", "x86_64+avx"))]
fn scan_block(
    metric: Metric,
    group: &[Vec<f32>],
    tops: &mut [TopK],
    ids: &[u64],
    vectors: &[f32],
    filter: Option<Filter>,
) {
    let Some(dimension) = group.first().map(Vec::len) else {
        return;
    };
    let quads = group.len() / 4;
    for (vector, &id) in vectors.chunks_exact(dimension).zip(ids) {
        for quad in 0..quads {
            let queries = [0, 1, 2, 3].map(|q| group[quad * 4 + q].as_slice());
            let keys = metric.key4(queries, vector);
            for (q, key) in keys.into_iter().enumerate() {
                let top = &mut tops[quad * 4 + q];
                if key > top.threshold() && accepts(filter, id) {
                    top.push(key, id);
                }
            }
        }
        for (query, top) in group.iter().zip(tops.iter_mut()).skip(quads * 4) {
            let key = metric.key(query, vector);
            if key > top.threshold() && accepts(filter, id) {
                top.push(key, id);
            }
        }
    }
}

/// Whether `filter` (none: everything) accepts `id`.
#[inline]
pub(crate) fn accepts(filter: Option<Filter>, id: u64) -> bool {
    filter.is_none_or(|accept| accept(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{dot, l2_squared};
    use rand::{Rng, SeedableRng};

    fn random_vectors(count: usize, dimension: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut random = rand::rngs::SmallRng::seed_from_u64(seed);
        (0..count)
            .map(|_| {
                (0..dimension)
                    .map(|_| random.random_range(-1.0..1.0))
                    .collect()
            })
            .collect()
    }

    /// Every score, sorted best first: the ground truth.
    fn brute_force(metric: Metric, base: &[(u64, Vec<f32>)], query: &[f32], k: usize) -> Vec<u64> {
        let unit = |v: &[f32]| normalized(v).unwrap_or_default();
        let mut scored: Vec<(f32, u64)> = base
            .iter()
            .map(|(id, vector)| {
                let key = match metric {
                    Metric::InnerProduct => dot(query, vector),
                    Metric::Cosine => dot(&unit(query), &unit(vector)),
                    Metric::L2 => -l2_squared(query, vector),
                };
                (key, *id)
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored.into_iter().take(k).map(|(_, id)| id).collect()
    }

    #[test]
    fn search_is_exact_for_every_metric_one_by_one_and_in_batches() {
        // 52: tiles of 16 rows (1,000 rows: whole groups, lone tiles and a part-filled last
        // tile); 100: one long row at a time, padded.
        for dimension in [52, 100] {
            exact_for_every_metric(dimension);
        }
    }

    fn exact_for_every_metric(dimension: usize) {
        let vectors = random_vectors(1_000, dimension, 7);
        // 100 queries in one batch, and its first 40 in another: the same answers.
        let queries = random_vectors(100, dimension, 8);
        for metric in [Metric::InnerProduct, Metric::L2, Metric::Cosine] {
            let mut index = FlatIndex::new(dimension, metric).expect("index");
            let base: Vec<(u64, Vec<f32>)> = vectors
                .iter()
                .enumerate()
                .map(|(i, v)| (i as u64 * 3 + 1, v.clone()))
                .collect();
            for (id, vector) in &base {
                index.upsert(*id, vector).expect("upsert");
            }
            let batch = index.search_batch(&queries, 10, None).expect("batch");
            let few = index.search_batch(&queries[..40], 10, None).expect("batch");
            let ids_of = |answers: &[Vec<Hit>]| -> Vec<Vec<u64>> {
                answers
                    .iter()
                    .map(|hits| hits.iter().map(|hit| hit.id).collect())
                    .collect()
            };
            assert_eq!(
                ids_of(&few),
                ids_of(&batch[..40]),
                "{metric:?}: both orientations agree"
            );
            // Filters apply in both orientations.
            let odd = |id: u64| !id.is_multiple_of(2);
            let odd_base: Vec<(u64, Vec<f32>)> =
                base.iter().filter(|(id, _)| odd(*id)).cloned().collect();
            for batch_size in [40, 100] {
                let filtered = index
                    .search_batch(&queries[..batch_size], 10, Some(&odd))
                    .expect("batch");
                for (query, ids) in queries.iter().zip(ids_of(&filtered)).step_by(7) {
                    assert_eq!(ids, brute_force(metric, &odd_base, query, 10), "{metric:?}");
                }
            }
            for (query, batch_hits) in queries.iter().zip(&batch) {
                let expected = brute_force(metric, &base, query, 10);
                let hits = index.search(query, 10, None).expect("search");
                let ids: Vec<u64> = hits.iter().map(|hit| hit.id).collect();
                assert_eq!(ids, expected, "{metric:?}");
                // Batches use matrix products: the same neighbours, scores equal up to rounding.
                let batch_ids: Vec<u64> = batch_hits.iter().map(|hit| hit.id).collect();
                assert_eq!(
                    batch_ids, expected,
                    "{metric:?}: batch and single answers agree"
                );
                for (single, batched) in hits.iter().zip(batch_hits) {
                    let tolerance = 1e-4 * single.score.abs().max(1.0);
                    assert!(
                        (single.score - batched.score).abs() <= tolerance,
                        "{metric:?}: {single:?} vs {batched:?}"
                    );
                }
                assert!(hits.windows(2).all(|pair| match metric {
                    Metric::L2 => pair[0].score <= pair[1].score,
                    _ => pair[0].score >= pair[1].score,
                }));
            }
        }
    }

    #[test]
    fn upsert_replaces_and_remove_keeps_the_rest_searchable() {
        let mut index = FlatIndex::new(2, Metric::L2).expect("index");
        index.upsert(1, &[0.0, 0.0]).expect("upsert");
        index.upsert(2, &[10.0, 10.0]).expect("upsert");
        index.upsert(3, &[5.0, 5.0]).expect("upsert");
        index.upsert(1, &[9.0, 9.0]).expect("replace");
        assert_eq!(index.len(), 3);
        let hits = index.search(&[10.0, 10.0], 2, None).expect("search");
        assert_eq!(
            hits,
            vec![Hit { id: 2, score: 0.0 }, Hit { id: 1, score: 2.0 }]
        );
        assert!(index.remove(2));
        assert!(!index.remove(2));
        assert_eq!(index.get(3), Some(&[5.0, 5.0][..]));
        let ids: Vec<u64> = index
            .search(&[10.0, 10.0], 10, None)
            .expect("search")
            .iter()
            .map(|hit| hit.id)
            .collect();
        assert_eq!(ids, [1, 3], "k above the count returns them all");
    }

    #[test]
    fn tiles_follow_replacements_and_removals() {
        let dimension = 20;
        let vectors = random_vectors(300, dimension, 11);
        let replacements = random_vectors(40, dimension, 12);
        let queries = random_vectors(20, dimension, 13);
        for metric in [Metric::InnerProduct, Metric::L2] {
            let mut tiled = FlatIndex::new(dimension, metric).expect("index");
            let mut rows_only = FlatIndex::storage(dimension, metric).expect("index");
            let mut base: Vec<(u64, Vec<f32>)> = vectors
                .iter()
                .enumerate()
                .map(|(i, v)| (i as u64, v.clone()))
                .collect();
            for index in [&mut tiled, &mut rows_only] {
                for (id, vector) in &base {
                    index.upsert(*id, vector).expect("upsert");
                }
            }
            // Every third removed (last rows move into the holes), 40 replaced in place, and
            // the count left not a multiple of the tile.
            base.retain(|(id, _)| id % 3 != 0 || *id >= 297);
            for index in [&mut tiled, &mut rows_only] {
                for id in (0..297).step_by(3) {
                    assert!(index.remove(id));
                }
            }
            for ((id, vector), replacement) in base.iter_mut().skip(5).step_by(4).zip(&replacements)
            {
                *vector = replacement.clone();
                tiled.upsert(*id, replacement).expect("replace");
                rows_only.upsert(*id, replacement).expect("replace");
            }
            assert_eq!(tiled.len(), base.len());
            for query in &queries {
                let expected = brute_force(metric, &base, query, 10);
                for index in [&tiled, &rows_only] {
                    let ids: Vec<u64> = index
                        .search(query, 10, None)
                        .expect("search")
                        .iter()
                        .map(|hit| hit.id)
                        .collect();
                    assert_eq!(ids, expected, "{metric:?}");
                }
                let even = |id: u64| id.is_multiple_of(2);
                let filtered: Vec<u64> = tiled
                    .search(query, 5, Some(&even))
                    .expect("search")
                    .iter()
                    .map(|hit| hit.id)
                    .collect();
                let even_base: Vec<(u64, Vec<f32>)> =
                    base.iter().filter(|(id, _)| even(*id)).cloned().collect();
                assert_eq!(filtered, brute_force(metric, &even_base, query, 5));
            }
        }
    }

    #[test]
    fn bad_input_is_refused_with_its_reason() {
        assert_eq!(
            FlatIndex::new(0, Metric::L2).err(),
            Some(VectorError::InvalidDimension(0))
        );
        assert_eq!(
            FlatIndex::new(MAX_DIMENSION + 1, Metric::L2).err(),
            Some(VectorError::InvalidDimension(MAX_DIMENSION + 1))
        );
        let mut index = FlatIndex::new(3, Metric::Cosine).expect("index");
        assert_eq!(
            index.upsert(1, &[1.0, 2.0]),
            Err(VectorError::DimensionMismatch {
                expected: 3,
                given: 2
            })
        );
        assert_eq!(
            index.upsert(1, &[1.0, f32::NAN, 0.0]),
            Err(VectorError::NotFinite { position: 1 })
        );
        assert_eq!(
            index.upsert(1, &[0.0, 0.0, 0.0]),
            Err(VectorError::ZeroVector)
        );
        assert_eq!(
            index.search(&[1.0, 0.0, 0.0], 0, None),
            Err(VectorError::InvalidK)
        );
        assert_eq!(index.search(&[1.0, 0.0, 0.0], 5, None), Ok(Vec::new()));
    }
}
