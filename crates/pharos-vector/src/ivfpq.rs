//! [`IvfPqIndex`]: approximate search for larger sets. A coarse quantizer (k-means, `nlist`
//! centroids) splits the vectors into inverted lists; each vector is stored in its list as a
//! product-quantized code of its residual (`m` sub-vectors, one byte each: 256 centroids per
//! sub-space). A query probes the `nprobe` nearest lists, scores their codes with lookup tables
//! (asymmetric distance computation), and re-ranks the best `rerank * k` candidates exactly
//! against the full vectors, which are kept for that.
//!
//! The index is trained on the vectors it holds ([`IvfPqIndex::train`]); vectors added before
//! training wait in a flat buffer and are searched exactly.

use std::collections::HashMap;

use crate::flat::{FlatIndex, accepts};
use multiversion::multiversion;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand::seq::index::sample;

use crate::kernel::{self, dot};
use crate::kmeans;
use crate::persist::{Decoder, Encoder, corrupt};
use crate::topk::TopK;
use crate::{Filter, Hit, Metric, Result, VectorError};

/// Centroids per sub-space (8-bit codes).
const CODEBOOK: usize = 256;
const TRAIN_ITERATIONS: usize = 12;

/// Build-time parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IvfPqParams {
    /// Inverted lists.
    pub nlist: usize,
    /// Sub-vectors per code; must divide the dimension.
    pub m: usize,
}

/// Query-time parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IvfPqSearch {
    /// Lists probed.
    pub nprobe: usize,
    /// Candidates re-ranked exactly, as a multiple of k (0: none, the code scores are final).
    pub rerank: usize,
}

/// A stage of [`IvfPqIndex::train`], reported as it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainStage {
    /// k-means of the coarse lists over a sample of `vectors`.
    CoarseQuantizer { vectors: usize },
    /// k-means of sub-space codebook `done` of `total`.
    Codebook { done: usize, total: usize },
    /// Encoding every vector into its list.
    Encoding { vectors: usize },
}

#[derive(Debug, Clone, Default)]
struct List {
    ids: Vec<u64>,
    /// Where each entry's full vector is in `vectors` ([`FlatIndex::row_of`]), so that
    /// re-ranking reads it without looking the id up.
    rows: Vec<usize>,
    /// `ids.len() * m` bytes.
    codes: Vec<u8>,
}

/// The trained parts of an IVF-PQ index: the coarse centroids and the sub-space codebooks.
/// Fitted apart from the index ([`Quantizers::fit`]) so that a service can train without
/// holding up the index, then [`IvfPqIndex::install`] them.
#[derive(Debug, Clone)]
pub struct Quantizers {
    coarse: Vec<f32>,
    codebooks: Vec<f32>,
}

impl Quantizers {
    /// Fits the quantizers of an index of `dimension` and `params` to `sample` (row-major).
    pub fn fit(
        sample: &[f32],
        dimension: usize,
        params: IvfPqParams,
        seed: u64,
        progress: &mut dyn FnMut(TrainStage),
    ) -> Quantizers {
        progress(TrainStage::CoarseQuantizer {
            vectors: sample.len() / dimension.max(1),
        });
        let coarse = kmeans::train(sample, dimension, params.nlist, TRAIN_ITERATIONS, seed);
        let dsub = dimension / params.m;
        // Every sample point's list at once, as matrix products, not one point at a time.
        let lists = kmeans::assign(sample, dimension, &coarse);
        let residuals: Vec<f32> = sample
            .chunks_exact(dimension)
            .zip(&lists)
            .flat_map(|(vector, &list)| {
                let list = list as usize;
                residual(vector, &coarse[list * dimension..(list + 1) * dimension])
            })
            .collect();
        let mut codebooks = Vec::with_capacity(params.m * CODEBOOK * dsub);
        for sub in 0..params.m {
            progress(TrainStage::Codebook {
                done: sub,
                total: params.m,
            });
            let part: Vec<f32> = residuals
                .chunks_exact(dimension)
                .flat_map(|r| r[sub * dsub..(sub + 1) * dsub].iter().copied())
                .collect();
            codebooks.extend(kmeans::train(
                &part,
                dsub,
                CODEBOOK,
                TRAIN_ITERATIONS,
                seed + 1 + sub as u64,
            ));
        }
        Quantizers { coarse, codebooks }
    }

    /// The quantizers as bytes: the coarse centroids, then the codebooks, little-endian `f32`.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.coarse
            .iter()
            .chain(&self.codebooks)
            .flat_map(|value| value.to_le_bytes())
            .collect()
    }

    /// Quantizers of an index of `dimension` and `params` read back from [`Quantizers::to_bytes`].
    pub fn from_bytes(bytes: &[u8], dimension: usize, params: IvfPqParams) -> Result<Quantizers> {
        let coarse_len = params.nlist * dimension;
        let codebooks_len = CODEBOOK * dimension;
        if bytes.len() != (coarse_len + codebooks_len) * 4 {
            return Err(VectorError::InvalidParams(format!(
                "stored quantizers have {} bytes; nlist {} and dimension {dimension} need {}",
                bytes.len(),
                params.nlist,
                (coarse_len + codebooks_len) * 4
            )));
        }
        let mut values: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
            .collect();
        let codebooks = values.split_off(coarse_len);
        Ok(Quantizers {
            coarse: values,
            codebooks,
        })
    }
}

#[derive(Debug, Clone)]
struct Trained {
    /// `nlist * dimension`.
    coarse: Vec<f32>,
    /// `m * CODEBOOK * dsub`: the codebook of sub-space `j` starts at `j * CODEBOOK * dsub`.
    codebooks: Vec<f32>,
    lists: Vec<List>,
    /// Where each id is: (list, position).
    positions: HashMap<u64, (usize, usize)>,
    /// The codebooks by dimension, `[sub][d][code]`, so a query's table is built with
    /// contiguous, vectorized loops over the 256 codes.
    by_dimension: Vec<f32>,
    /// L2 only, `m * CODEBOOK`: `-|r|^2` for every codeword `r` (see `search`).
    code_norms: Vec<f32>,
}

#[derive(Debug, Clone)]
pub struct IvfPqIndex {
    params: IvfPqParams,
    /// Every vector, for training and exact re-ranking.
    vectors: FlatIndex,
    trained: Option<Trained>,
}

impl IvfPqIndex {
    pub fn new(dimension: usize, metric: Metric, params: IvfPqParams) -> Result<Self> {
        let vectors = FlatIndex::storage(dimension, metric)?;
        if params.nlist == 0 || params.m == 0 || !dimension.is_multiple_of(params.m) {
            return Err(VectorError::InvalidParams(format!(
                "nlist must be at least 1 and m must divide the dimension {dimension} (nlist {}, m {})",
                params.nlist, params.m
            )));
        }
        Ok(Self {
            params,
            vectors,
            trained: None,
        })
    }

    pub fn len(&self) -> usize {
        self.vectors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }

    pub fn is_trained(&self) -> bool {
        self.trained.is_some()
    }

    /// Stores `vector` under `id`, replacing what `id` held (encoded at once when trained).
    pub fn upsert(&mut self, id: u64, vector: &[f32]) -> Result<()> {
        self.vectors.upsert(id, vector)?;
        if self.trained.is_some() {
            self.unlist(id);
            self.enlist(id);
        }
        Ok(())
    }

    pub fn remove(&mut self, id: u64) -> bool {
        self.unlist(id);
        let Some(row) = self.vectors.row_of(id) else {
            return false;
        };
        self.vectors.remove(id);
        // The last vector moved into the gap: its list entry follows it.
        if let (Some(moved), Some(trained)) = (self.vectors.id_at(row), &mut self.trained)
            && let Some(&(list, position)) = trained.positions.get(&moved)
        {
            trained.lists[list].rows[position] = row;
        }
        true
    }

    pub fn params(&self) -> IvfPqParams {
        self.params
    }

    /// Bytes held: the full vectors, the codes and the quantizers.
    pub fn memory_bytes(&self) -> usize {
        let trained = self.trained.as_ref().map_or(0, |trained| {
            (trained.coarse.capacity() + trained.codebooks.capacity()) * 4
                + trained
                    .lists
                    .iter()
                    .map(|list| {
                        (list.ids.capacity() + list.rows.capacity()) * 8 + list.codes.capacity()
                    })
                    .sum::<usize>()
                + trained.positions.capacity() * 25
                + trained.code_norms.capacity() * 4
                + trained.by_dimension.capacity() * 4
        });
        self.vectors.memory_bytes() + trained
    }

    /// The vectors needed before [`IvfPqIndex::train`] gives useful lists and codebooks: 39
    /// training points per list, as FAISS asks, and at least 10 per codebook entry.
    pub fn min_training_vectors(&self) -> usize {
        (self.params.nlist * 39).max(CODEBOOK * 10)
    }

    /// Trains the coarse quantizer and the codebooks on the vectors held, then encodes them all.
    /// The result depends on the set of vectors and `seed`, not on the order they came in.
    /// `progress` hears each stage as it starts.
    pub fn train(&mut self, seed: u64, progress: &mut dyn FnMut(TrainStage)) {
        let sample = self.training_sample(seed);
        let quantizers = Quantizers::fit(&sample, self.dimension(), self.params, seed, progress);
        progress(TrainStage::Encoding {
            vectors: self.len(),
        });
        self.install(quantizers);
    }

    pub fn dimension(&self) -> usize {
        self.vectors.dimension()
    }

    pub fn metric(&self) -> Metric {
        self.vectors.metric()
    }

    /// The vectors training reads: at most 256 per list, drawn by `seed` from the vectors held
    /// in id order (so the draw does not depend on the order they came in), row-major.
    pub fn training_sample(&self, seed: u64) -> Vec<f32> {
        let mut rows: Vec<(u64, &[f32])> = self.vectors.rows().collect();
        rows.sort_unstable_by_key(|(id, _)| *id);
        let limit = self.params.nlist.max(CODEBOOK) * kmeans::SAMPLE_PER_CENTROID;
        let chosen: Vec<usize> = if rows.len() > limit {
            let mut random = SmallRng::seed_from_u64(seed);
            let mut chosen = sample(&mut random, rows.len(), limit).into_vec();
            chosen.sort_unstable();
            chosen
        } else {
            (0..rows.len()).collect()
        };
        chosen
            .into_iter()
            .flat_map(|row| rows[row].1.iter().copied())
            .collect()
    }

    /// Replaces the quantizers with `quantizers` (fitted for this index's dimension and
    /// parameters) and encodes every vector held with them.
    pub fn install(&mut self, quantizers: Quantizers) {
        self.install_quantizers(quantizers);
        self.encode_all();
    }

    /// Sets `quantizers` and the tables derived from them, with empty lists.
    fn install_quantizers(&mut self, quantizers: Quantizers) {
        let code_norms = if self.vectors.metric() == Metric::L2 {
            let dsub = self.dimension() / self.params.m;
            quantizers
                .codebooks
                .chunks_exact(dsub)
                .map(|codeword| -dot(codeword, codeword))
                .collect()
        } else {
            Vec::new()
        };
        let by_dimension = by_dimension(&quantizers.codebooks, self.dimension() / self.params.m);
        self.trained = Some(Trained {
            by_dimension,
            coarse: quantizers.coarse,
            codebooks: quantizers.codebooks,
            lists: vec![List::default(); self.params.nlist],
            positions: HashMap::new(),
            code_norms,
        });
    }

    /// Installs `quantizers` with lists already encoded by them (read back from a file).
    fn install_encoded(
        &mut self,
        quantizers: Quantizers,
        lists: Vec<List>,
        positions: HashMap<u64, (usize, usize)>,
    ) {
        self.install_quantizers(quantizers);
        if let Some(trained) = &mut self.trained {
            trained.lists = lists;
            trained.positions = positions;
        }
    }

    /// Puts every vector held into its list, in id order: the coarse lists and the codes of all
    /// vectors are found with matrix products ([`kmeans::assign`]) rather than one by one.
    fn encode_all(&mut self) {
        let Some(trained) = &mut self.trained else {
            return;
        };
        let dimension = self.vectors.dimension();
        let m = self.params.m;
        let dsub = dimension / m;
        let mut rows: Vec<(u64, usize, &[f32])> = self
            .vectors
            .rows()
            .enumerate()
            .map(|(row, (id, vector))| (id, row, vector))
            .collect();
        rows.sort_unstable_by_key(|(id, _, _)| *id);
        let data: Vec<f32> = rows
            .iter()
            .flat_map(|(_, _, vector)| vector.iter().copied())
            .collect();
        let lists = kmeans::assign(&data, dimension, &trained.coarse);
        let residuals: Vec<f32> = data
            .chunks_exact(dimension)
            .zip(&lists)
            .flat_map(|(vector, &list)| {
                let list = list as usize;
                residual(
                    vector,
                    &trained.coarse[list * dimension..(list + 1) * dimension],
                )
            })
            .collect();
        let mut codes = vec![0u8; rows.len() * m];
        for sub in 0..m {
            let part: Vec<f32> = residuals
                .chunks_exact(dimension)
                .flat_map(|r| r[sub * dsub..(sub + 1) * dsub].iter().copied())
                .collect();
            let book = &trained.codebooks[sub * CODEBOOK * dsub..(sub + 1) * CODEBOOK * dsub];
            for (row, code) in kmeans::assign(&part, dsub, book).into_iter().enumerate() {
                codes[row * m + sub] = code as u8;
            }
        }
        for (((id, row, _), &list), code) in rows.iter().zip(&lists).zip(codes.chunks_exact(m)) {
            let entries = &mut trained.lists[list as usize];
            trained
                .positions
                .insert(*id, (list as usize, entries.ids.len()));
            entries.ids.push(*id);
            entries.rows.push(*row);
            entries.codes.extend_from_slice(code);
        }
    }

    /// The `k` nearest to `query` among those `filter` accepts, best first.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        options: IvfPqSearch,
        filter: Option<Filter>,
    ) -> Result<Vec<Hit>> {
        let Some(trained) = &self.trained else {
            return self.vectors.search(query, k, filter);
        };
        if k == 0 {
            return Err(VectorError::InvalidK);
        }
        let query = self.vectors.prepare(query)?;
        Ok(search_lists(self, trained, &query, k, options, filter))
    }

    /// [`IvfPqIndex::search`] of a prepared query on the trained structure.
    #[inline(always)]
    fn search_here(
        &self,
        trained: &Trained,
        query: &[f32],
        k: usize,
        options: IvfPqSearch,
        filter: Option<Filter>,
    ) -> Vec<Hit> {
        let metric = self.vectors.metric();
        let dimension = self.vectors.dimension();
        let m = self.params.m;
        // The lists to probe: nearest centroids by the index's metric.
        let mut probe = TopK::new(options.nprobe.clamp(1, self.params.nlist));
        for (list, centroid) in trained.coarse.chunks_exact(dimension).enumerate() {
            probe.push(metric.key_simd(query, centroid), list as u64);
        }
        let keep = if options.rerank == 0 {
            k
        } else {
            k.saturating_mul(options.rerank)
        };
        // Candidates carry their row in `vectors`, for re-ranking.
        let mut candidates = TopK::with_extras(keep);
        // Inner product: <q, c + r> = <q, c> + sum of <q_j, r_j>, so one table serves every list.
        // L2: -|q - c - r|^2 = -|q - c|^2 + sum of (2 <(q - c)_j, r_j> - |r_j|^2): the first term
        // is the list's key from the probe; the rest is one table per probed list, computed from
        // the query's residual (the codebooks and code norms stay in cache) rather than read
        // from precomputed per-list tables, which at nlist 1024 and m 32 were 32 MiB of memory
        // traffic.
        let inner = matches!(metric, Metric::InnerProduct | Metric::Cosine);
        let mut table = vec![0.0f32; m * CODEBOOK];
        if inner {
            fill_table(&mut table, &trained.by_dimension, query, m, 1.0, None);
        }
        let mut residual_query = vec![0.0f32; dimension];
        let mut scan = |candidates: &mut TopK<usize>, centroid_key: f32, list_index: usize| {
            let entries = &trained.lists[list_index];
            if !inner {
                let centroid =
                    &trained.coarse[list_index * dimension..(list_index + 1) * dimension];
                for ((rest, &q), &c) in residual_query.iter_mut().zip(query).zip(centroid) {
                    *rest = q - c;
                }
                fill_table(
                    &mut table,
                    &trained.by_dimension,
                    &residual_query,
                    m,
                    2.0,
                    Some(&trained.code_norms),
                );
            }
            let (tables, _) = table.as_chunks::<CODEBOOK>();
            // Most codes score below the worst kept candidate: they cost one comparison with a
            // bar held in a register (in code-score units, the list's key taken off), and only
            // the rest reach the heap, which then raises the bar.
            let mut offer = |position: usize, score: f32| {
                if accepts(filter, entries.ids[position]) {
                    candidates.push_with(
                        centroid_key + score,
                        entries.ids[position],
                        entries.rows[position],
                    );
                }
                candidates.threshold() - centroid_key
            };
            let mut bar = f32::NEG_INFINITY;
            let pairs = entries.codes.chunks_exact(2 * m);
            let last = pairs.remainder();
            let mut position = 0;
            for pair in pairs {
                let (first, second) = pair.split_at(m);
                let [a, b] = code_scores([first, second], tables);
                if a > bar {
                    bar = offer(position, a);
                }
                if b > bar {
                    bar = offer(position + 1, b);
                }
                position += 2;
            }
            if !last.is_empty() {
                let [a, _] = code_scores([last, last], tables);
                if a > bar {
                    offer(position, a);
                }
            }
        };
        let probed = probe.into_sorted();
        for &(centroid_key, list) in &probed {
            scan(&mut candidates, centroid_key, list as usize);
        }
        if filter.is_some() && candidates.len() < k {
            // A selective filter left fewer than k candidates in the nearest `nprobe` lists:
            // the next nearest lists are read, nearest first, until k are found or every list
            // has been, so a filter narrows the answer without cutting it short.
            let mut rest: Vec<(f32, usize)> = trained
                .coarse
                .chunks_exact(dimension)
                .enumerate()
                .filter(|(list, _)| !probed.iter().any(|&(_, done)| done as usize == *list))
                .map(|(list, centroid)| (metric.key_simd(query, centroid), list))
                .collect();
            rest.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
            for (centroid_key, list) in rest {
                if candidates.len() >= k {
                    break;
                }
                scan(&mut candidates, centroid_key, list);
            }
        }
        let mut top = TopK::new(k);
        let candidates = candidates.into_sorted_with();
        if options.rerank == 0 {
            for (approximate, id, _) in candidates {
                top.push(approximate, id);
            }
            return metric.hits(top.into_sorted());
        }
        // Every candidate's vector asked to load first, then every distance: the reads (each a
        // miss to memory) overlap instead of waiting one after another.
        let prefetch = kernel::Prefetch::new();
        for &(_, _, row) in &candidates {
            prefetch.fetch_lines(self.vectors.row(row));
        }
        for (_, id, row) in candidates {
            top.push(metric.key_simd(query, self.vectors.row(row)), id);
        }
        metric.hits(top.into_sorted())
    }

    /// Adds `id` (already in `vectors`) to its list.
    fn enlist(&mut self, id: u64) {
        let Some(trained) = &mut self.trained else {
            return;
        };
        let Some(row) = self.vectors.row_of(id) else {
            return;
        };
        let vector = self.vectors.row(row);
        let dimension = vector.len();
        let dsub = dimension / self.params.m;
        let list = kmeans::nearest(&trained.coarse, dimension, vector);
        let rest = residual(
            vector,
            &trained.coarse[list * dimension..(list + 1) * dimension],
        );
        let entries = &mut trained.lists[list];
        for sub in 0..self.params.m {
            let book = &trained.codebooks[sub * CODEBOOK * dsub..(sub + 1) * CODEBOOK * dsub];
            let code = kmeans::nearest(book, dsub, &rest[sub * dsub..(sub + 1) * dsub]);
            entries.codes.push(code as u8);
        }
        trained.positions.insert(id, (list, entries.ids.len()));
        entries.ids.push(id);
        entries.rows.push(row);
    }

    /// Removes `id` from its list; the list's last entry moves into its place.
    fn unlist(&mut self, id: u64) {
        let Some(trained) = &mut self.trained else {
            return;
        };
        let Some((list, position)) = trained.positions.remove(&id) else {
            return;
        };
        let m = self.params.m;
        let entries = &mut trained.lists[list];
        let last = entries.ids.len() - 1;
        if position != last {
            let moved = entries.ids[last];
            entries.ids[position] = moved;
            entries.rows[position] = entries.rows[last];
            entries
                .codes
                .copy_within(last * m..(last + 1) * m, position * m);
            trained.positions.insert(moved, (list, position));
        }
        entries.ids.pop();
        entries.rows.pop();
        entries.codes.truncate(last * m);
    }
}

impl IvfPqIndex {
    /// Writes the vectors and, when trained, the quantizers and every list's ids and codes
    /// (see [`crate::persist`]).
    pub(crate) fn encode(&self, out: &mut Encoder) {
        out.usize(self.params.nlist);
        out.usize(self.params.m);
        self.vectors.encode(out);
        match &self.trained {
            None => out.u8(0),
            Some(trained) => {
                out.u8(1);
                out.f32s(&trained.coarse);
                out.f32s(&trained.codebooks);
                for list in &trained.lists {
                    out.u64s(&list.ids);
                    out.bytes(&list.codes);
                }
            }
        }
    }

    /// Reads what [`IvfPqIndex::encode`] wrote; the lookup layouts and positions are rebuilt,
    /// and every listed id must be a stored vector listed once.
    pub(crate) fn decode(input: &mut Decoder<'_>) -> Result<Self> {
        let params = IvfPqParams {
            nlist: input.usize()?,
            m: input.usize()?,
        };
        let vectors = FlatIndex::decode_storage(input)?;
        let mut index = Self::new(vectors.dimension(), vectors.metric(), params)?;
        index.vectors = vectors;
        if input.u8()? == 0 {
            return Ok(index);
        }
        let dimension = index.dimension();
        let quantizers = Quantizers {
            coarse: input.f32s()?,
            codebooks: input.f32s()?,
        };
        if quantizers.coarse.len() != params.nlist * dimension
            || quantizers.codebooks.len() != CODEBOOK * dimension
        {
            return Err(corrupt("IVF-PQ quantizers do not fit the index"));
        }
        let mut lists = Vec::with_capacity(params.nlist.min(1 << 20));
        let mut positions = HashMap::with_capacity(index.len());
        for list in 0..params.nlist {
            let ids = input.u64s()?;
            let codes = input.bytes()?.to_vec();
            if codes.len() != ids.len() * params.m {
                return Err(corrupt("IVF-PQ codes do not match their ids"));
            }
            let mut rows = Vec::with_capacity(ids.len());
            for (position, &id) in ids.iter().enumerate() {
                match index.vectors.row_of(id) {
                    Some(row) if positions.insert(id, (list, position)).is_none() => rows.push(row),
                    _ => {
                        return Err(corrupt(format!(
                            "IVF-PQ list entry {id} is not one stored vector"
                        )));
                    }
                }
            }
            lists.push(List { ids, rows, codes });
        }
        if positions.len() != index.len() {
            return Err(corrupt("IVF-PQ lists miss stored vectors"));
        }
        index.install_encoded(quantizers, lists, positions);
        Ok(index)
    }
}

/// The inner product of every codebook entry of every sub-space with `target`'s sub-vectors,
/// times `scale`, plus `start[entry]` (zero when `None`): `table[sub * CODEBOOK + code]`, from
/// the codebooks laid out by dimension ([`by_dimension`]), one pass over a row per dimension.
#[inline(always)]
fn fill_table(
    table: &mut [f32],
    by_dimension: &[f32],
    target: &[f32],
    m: usize,
    scale: f32,
    start: Option<&[f32]>,
) {
    let dsub = target.len() / m;
    for (sub, (row, (values, columns))) in table
        .chunks_exact_mut(CODEBOOK)
        .zip(
            target
                .chunks_exact(dsub)
                .zip(by_dimension.chunks_exact(dsub * CODEBOOK)),
        )
        .enumerate()
    {
        let mut columns = columns.chunks_exact(CODEBOOK);
        // The first dimension writes the row (over `start`), the others add to it.
        if let (Some(&value), Some(codes)) = (values.first(), columns.next()) {
            let value = scale * value;
            match start {
                Some(start) => {
                    let start = &start[sub * CODEBOOK..(sub + 1) * CODEBOOK];
                    for ((entry, &code), &base) in row.iter_mut().zip(codes).zip(start) {
                        *entry = base + value * code;
                    }
                }
                None => {
                    for (entry, &code) in row.iter_mut().zip(codes) {
                        *entry = value * code;
                    }
                }
            }
        }
        for (&value, codes) in values.iter().skip(1).zip(columns) {
            let value = scale * value;
            for (entry, &code) in row.iter_mut().zip(codes) {
                *entry += value * code;
            }
        }
    }
}

/// The codebooks (`[sub][code][d]`) laid out `[sub][d][code]`.
fn by_dimension(codebooks: &[f32], dsub: usize) -> Vec<f32> {
    let mut out = vec![0.0; codebooks.len()];
    for (sub, book) in codebooks.chunks_exact(CODEBOOK * dsub).enumerate() {
        for (code, entry) in book.chunks_exact(dsub).enumerate() {
            for (d, &value) in entry.iter().enumerate() {
                out[(sub * dsub + d) * CODEBOOK + code] = value;
            }
        }
    }
    out
}

/// For each of two codes, the sum of `tables[sub][code[sub]]` over the sub-spaces: an index by
/// a byte into a table of 256 needs no bounds check, and two codes with four partial sums each
/// keep eight lookups in flight instead of waiting on each other.
#[inline(always)]
fn code_scores(codes: [&[u8]; 2], tables: &[[f32; CODEBOOK]]) -> [f32; 2] {
    let mut sums = [[0.0f32; 4]; 2];
    let (table_quads, table_rest) = tables.as_chunks::<4>();
    let (first_quads, first_rest) = codes[0].as_chunks::<4>();
    let (second_quads, second_rest) = codes[1].as_chunks::<4>();
    for ((first, second), tables) in first_quads.iter().zip(second_quads).zip(table_quads) {
        for lane in 0..4 {
            sums[0][lane] += tables[lane][first[lane] as usize];
            sums[1][lane] += tables[lane][second[lane] as usize];
        }
    }
    for ((&first, &second), table) in first_rest.iter().zip(second_rest).zip(table_rest) {
        sums[0][0] += table[first as usize];
        sums[1][0] += table[second as usize];
    }
    sums.map(|sums| (sums[0] + sums[2]) + (sums[1] + sums[3]))
}

/// Searches the lists of `index`, compiled for AVX2/FMA and AVX besides the baseline and chosen
/// at run time.
#[multiversion(targets("x86_64+avx2+fma", "x86_64+avx"))]
fn search_lists(
    index: &IvfPqIndex,
    trained: &Trained,
    query: &[f32],
    k: usize,
    options: IvfPqSearch,
    filter: Option<Filter>,
) -> Vec<Hit> {
    index.search_here(trained, query, k, options, filter)
}

fn residual(vector: &[f32], centroid: &[f32]) -> Vec<f32> {
    vector.iter().zip(centroid).map(|(v, c)| v - c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    /// `count` points around 40 random centers: the clustered data real embeddings look like.
    fn clustered(count: usize, dimension: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut random = SmallRng::seed_from_u64(seed);
        let centers: Vec<Vec<f32>> = (0..40)
            .map(|_| {
                (0..dimension)
                    .map(|_| random.random_range(-1.0..1.0))
                    .collect()
            })
            .collect();
        (0..count)
            .map(|i| {
                centers[i % centers.len()]
                    .iter()
                    .map(|value| value + random.random_range(-0.15..0.15))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn recall_at_10_against_exact_search_for_every_metric() {
        let dimension = 16;
        let base = clustered(3_000, dimension, 11);
        let queries = clustered(100, dimension, 12);
        for metric in [Metric::InnerProduct, Metric::L2, Metric::Cosine] {
            let mut exact = FlatIndex::new(dimension, metric).expect("flat");
            let params = IvfPqParams { nlist: 16, m: 4 };
            let mut index = IvfPqIndex::new(dimension, metric, params).expect("ivfpq");
            for (id, vector) in base.iter().enumerate() {
                exact.upsert(id as u64, vector).expect("upsert");
                index.upsert(id as u64, vector).expect("upsert");
            }
            index.train(5, &mut |_| {});
            let options = IvfPqSearch {
                nprobe: 8,
                rerank: 10,
            };
            let mut found = 0;
            for query in &queries {
                let truth: Vec<u64> = exact
                    .search(query, 10, None)
                    .expect("exact")
                    .iter()
                    .map(|h| h.id)
                    .collect();
                let got = index.search(query, 10, options, None).expect("search");
                found += got.iter().filter(|hit| truth.contains(&hit.id)).count();
            }
            let recall = found as f64 / (queries.len() * 10) as f64;
            assert!(recall >= 0.9, "{metric:?}: recall@10 {recall}");
        }
    }

    /// An L2 index of `count` clustered vectors (ids 0..count), trained with `train_seed`.
    fn trained_l2(
        dimension: usize,
        params: IvfPqParams,
        count: usize,
        data_seed: u64,
        train_seed: u64,
    ) -> (Vec<Vec<f32>>, IvfPqIndex) {
        let base = clustered(count, dimension, data_seed);
        let mut index = IvfPqIndex::new(dimension, Metric::L2, params).expect("ivfpq");
        for (id, vector) in base.iter().enumerate() {
            index.upsert(id as u64, vector).expect("upsert");
        }
        index.train(train_seed, &mut |_| {});
        (base, index)
    }

    #[test]
    fn upserts_after_training_are_encoded_and_found() {
        let (dimension, params) = (16, IvfPqParams { nlist: 8, m: 4 });
        let (_, mut index) = trained_l2(dimension, params, 1_000, 21, 1);
        let probe = vec![5.0f32; dimension];
        index.upsert(99_999, &probe).expect("upsert");
        let options = IvfPqSearch {
            nprobe: 8,
            rerank: 4,
        };
        let hits = index.search(&probe, 1, options, None).expect("search");
        assert_eq!(hits[0].id, 99_999);
        assert!(index.remove(99_999));
        let sample = index.training_sample(1);
        let fitted = Quantizers::fit(&sample, dimension, params, 1, &mut |_| {});
        let bytes = fitted.to_bytes();
        let read = Quantizers::from_bytes(&bytes, dimension, params).expect("read back");
        assert_eq!(read.to_bytes(), bytes);
        assert!(Quantizers::from_bytes(&bytes[4..], dimension, params).is_err());
        let hits = index.search(&probe, 1, options, None).expect("search");
        assert_ne!(hits[0].id, 99_999);
        assert_eq!(
            IvfPqIndex::new(30, Metric::L2, IvfPqParams { nlist: 4, m: 7 }).err().map(|e| e.to_string()),
            Some("invalid parameters: nlist must be at least 1 and m must divide the dimension 30 (nlist 4, m 7)".to_owned())
        );
    }

    #[test]
    fn a_selective_filter_reads_further_lists_until_k_are_found() {
        let (dimension, params) = (16, IvfPqParams { nlist: 16, m: 4 });
        let (base, index) = trained_l2(dimension, params, 2_000, 5, 1);
        // One vector in 100 passes: the nearest list alone holds one or two of them.
        let accept = |id: u64| id.is_multiple_of(100);
        let options = IvfPqSearch {
            nprobe: 1,
            rerank: 4,
        };
        for query in [&base[7], &base[1_234], &vec![0.0; dimension]] {
            let hits = index
                .search(query, 10, options, Some(&accept))
                .expect("search");
            let ids: std::collections::HashSet<u64> = hits.iter().map(|hit| hit.id).collect();
            assert_eq!(ids.len(), 10, "{hits:?}");
            assert!(ids.iter().all(|&id| accept(id)), "{hits:?}");
            assert!(hits.windows(2).all(|pair| pair[0].score <= pair[1].score));
        }
        // Fewer matches than k: every list is read and all of them come back.
        let rare = |id: u64| id.is_multiple_of(400);
        let hits = index
            .search(&base[7], 10, options, Some(&rare))
            .expect("search");
        assert_eq!(hits.len(), 5, "{hits:?}");
    }

    #[test]
    fn reranking_reads_each_candidates_own_vector_after_removals_move_rows() {
        let (base, mut index) = trained_l2(16, IvfPqParams { nlist: 8, m: 4 }, 1_200, 5, 3);
        // Removals move the last stored vector into each gap; replacements keep their row.
        for id in (0..1_200u64).step_by(3) {
            assert!(index.remove(id));
        }
        for id in (1..1_200u64).step_by(7).filter(|id| id % 3 != 0) {
            index
                .upsert(id, &base[(id as usize + 1) % 1_200])
                .expect("replace");
        }
        let options = IvfPqSearch {
            nprobe: 8,
            rerank: 50,
        };
        let expected = |id: u64| {
            if id % 7 == 1 {
                &base[(id as usize + 1) % 1_200]
            } else {
                &base[id as usize]
            }
        };
        let read_back = {
            let mut out = Encoder::default();
            index.encode(&mut out);
            let bytes = out.into_bytes();
            IvfPqIndex::decode(&mut Decoder::new(&bytes)).expect("decode")
        };
        for index in [&index, &read_back] {
            assert_eq!(index.len(), 800);
            for id in (0..1_200u64).filter(|id| id % 3 != 0).step_by(5) {
                let hits = index
                    .search(expected(id), 1, options, None)
                    .expect("search");
                // Its own vector, re-ranked exactly: distance zero (ties with an equal vector
                // stored under another id are possible, so the score is what is checked).
                assert_eq!(hits[0].score, 0.0, "id {id}: {hits:?}");
                assert!(hits[0].id % 3 != 0, "a removed id came back: {hits:?}");
            }
        }
    }
}
