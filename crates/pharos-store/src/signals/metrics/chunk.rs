//! The byte format of a metric chunk: every point one series has in one chunk window, oldest
//! first, compressed. Times that step evenly (a scrape interval) are stored as a start and a
//! step; whole-number values (counters, buckets) and uneven times as bit-packed deltas
//! ([`packed`]), which decode at a nanosecond a value; anything else with pco (pcodec). Both
//! are lossless to the bit, so NaN payloads such as Prometheus' staleness marker come back
//! exactly.
//!
//! Layout (format 2): format version (1 byte), point count (u32 LE), the times' encoding
//! (1 byte): `0` evenly stepped, then start and step (i64 LE each); `1` pco or `2` packed, then
//! its length (u32 LE) and its bytes; then the values' encoding (1 byte): `1` pco or `2`
//! packed, and its bytes to the end. Format 1, written before packing, has no values' byte:
//! its values are a pco file, and its times stepped or pco. Both are read.

mod packed;

use pco::ChunkConfig;
use pco::standalone::{simple_compress, simple_decompress_into};

use super::PointForm;
use crate::error::{Result, StoreError};

/// The format written.
const FORMAT: u8 = 2;
/// The format written before whole numbers were packed: values always pco, no byte saying so.
const FORMAT_PCO_VALUES: u8 = 1;
const TIMES_STEPPED: u8 = 0;
const ENCODED_PCO: u8 = 1;
const ENCODED_PACKED: u8 = 2;

/// Encodes `points` (time in microseconds, value), oldest first, as one chunk.
pub(crate) fn encode(points: &[(i64, f64)]) -> Result<Vec<u8>> {
    let count = u32::try_from(points.len())
        .map_err(|_| StoreError::InvalidValue("a chunk holds at most 2^32 - 1 points".into()))?;
    let times: Vec<i64> = points.iter().map(|point| point.0).collect();
    let mut data = Vec::with_capacity(32 + points.len());
    data.push(FORMAT);
    data.extend_from_slice(&count.to_le_bytes());
    match even_step(&times) {
        Some((start, step)) => {
            data.push(TIMES_STEPPED);
            data.extend_from_slice(&start.to_le_bytes());
            data.extend_from_slice(&step.to_le_bytes());
        }
        None => {
            let (encoding, encoded) = encode_numbers(&times, &times)?;
            let length = u32::try_from(encoded.len())
                .map_err(|_| StoreError::InvalidValue("a chunk's times exceed 4 GiB".into()))?;
            data.push(encoding);
            data.extend_from_slice(&length.to_le_bytes());
            data.extend_from_slice(&encoded);
        }
    }
    let values: Vec<f64> = points.iter().map(|point| point.1).collect();
    let whole: Option<Vec<i64>> = values.iter().map(|&value| whole_number(value)).collect();
    let (encoding, encoded) = match whole {
        Some(whole) => encode_numbers(&whole, &values)?,
        None => (ENCODED_PCO, pco_compress(&values)?),
    };
    data.push(encoding);
    data.extend_from_slice(&encoded);
    Ok(data)
}

/// `numbers` packed when their deltas allow, else `as_stored` (the same numbers, as the chunk
/// holds them) compressed with pco; with the byte that says which.
fn encode_numbers<T: pco::data_types::Number>(
    numbers: &[i64],
    as_stored: &[T],
) -> Result<(u8, Vec<u8>)> {
    Ok(match packed::encode(numbers) {
        Some(packed) => (ENCODED_PACKED, packed),
        None => (ENCODED_PCO, pco_compress(as_stored)?),
    })
}

fn pco_compress<T: pco::data_types::Number>(numbers: &[T]) -> Result<Vec<u8>> {
    simple_compress(numbers, &ChunkConfig::default()).map_err(codec_error)
}

/// `value` as the integer it is exactly, bit for bit (so not -0.0, a NaN or an infinity).
fn whole_number(value: f64) -> Option<i64> {
    let whole = value as i64;
    ((whole as f64).to_bits() == value.to_bits()).then_some(whole)
}

/// Buffers one read reuses across the chunks it decodes.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    times: Vec<i64>,
    values: Vec<f64>,
}

/// Decodes a chunk and appends its points with a time in `from..=to`, oldest first, to `points`,
/// less those `dropped` accepts (points a read takes from elsewhere). The times of a chunk
/// ascend, so the points in range are found by binary search and copied without a test each,
/// unless `dropped` must see every one. `recorded_count` is the point count the chunk's row
/// records: a header that says otherwise is corrupt, and is refused before its count sizes
/// anything.
pub(crate) fn decode_into<F: PointForm>(
    data: &[u8],
    recorded_count: i32,
    (from, to): (i64, i64),
    dropped: Option<&dyn Fn(i64) -> bool>,
    points: &mut Vec<F::Point>,
    scratch: &mut Scratch,
) -> Result<()> {
    let mut reader = Reader { data };
    let format = reader.byte()?;
    if format != FORMAT && format != FORMAT_PCO_VALUES {
        return Err(corrupt("unknown format version"));
    }
    let count = reader.u32()?;
    if i64::from(count) != i64::from(recorded_count) {
        return Err(corrupt("its point count differs from its row's"));
    }
    let count = count as usize;
    let stepped = match reader.byte()? {
        TIMES_STEPPED => Some((reader.i64()?, reader.i64()?)),
        ENCODED_PACKED if format == FORMAT_PCO_VALUES => {
            return Err(corrupt("packed times in a format 1 chunk"));
        }
        encoding @ (ENCODED_PCO | ENCODED_PACKED) => {
            let length = reader.u32()? as usize;
            let times = reader.take(length)?;
            decode_numbers(encoding, times, count, &mut scratch.times, |time| time)?;
            None
        }
        _ => return Err(corrupt("unknown time encoding")),
    };
    let values_encoding = match format {
        FORMAT_PCO_VALUES => ENCODED_PCO,
        _ => reader.byte()?,
    };
    decode_numbers(
        values_encoding,
        reader.data,
        count,
        &mut scratch.values,
        |whole| whole as f64,
    )?;
    let values = &scratch.values[..count];
    match stepped {
        Some((_, step)) if step <= 0 && count > 1 => {
            return Err(corrupt("its times do not ascend"));
        }
        Some((start, step)) => {
            let time = |index: usize| start.wrapping_add(step.wrapping_mul(index as i64));
            let low = first_index(count, |index| time(index) < from);
            let high = low + first_index(count - low, |index| time(low + index) <= to);
            append::<F>(
                points,
                (low..high).map(|index| (time(index), values[index])),
                dropped,
            );
        }
        None => {
            let times = &scratch.times[..count];
            let low = times.partition_point(|&time| time < from);
            let high = low + times[low..].partition_point(|&time| time <= to);
            let in_range = times[low..high]
                .iter()
                .copied()
                .zip(values[low..high].iter().copied());
            append::<F>(points, in_range, dropped);
        }
    }
    Ok(())
}

/// Appends the points `in_range` (stored times) to `points` in the reader's form, less those
/// `dropped` accepts: without a test each when nothing is dropped.
fn append<F: PointForm>(
    points: &mut Vec<F::Point>,
    in_range: impl Iterator<Item = (i64, f64)>,
    dropped: Option<&dyn Fn(i64) -> bool>,
) {
    let made = |(time, value)| F::point(time, value);
    match dropped {
        None => points.extend(in_range.map(made)),
        Some(dropped) => points.extend(in_range.filter(|&(time, _)| !dropped(time)).map(made)),
    }
}

/// The number of indices of `0..count`, from the start, for which `before` holds (it holds for
/// a prefix): a binary search over indices rather than a slice.
fn first_index(count: usize, before: impl Fn(usize) -> bool) -> usize {
    let (mut low, mut high) = (0, count);
    while low < high {
        let middle = low + (high - low) / 2;
        if before(middle) {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    low
}

/// Decodes exactly `count` numbers encoded as `encoding` says into the first `count` of
/// `into` (grown to hold them; a scratch buffer reused across chunks, so mostly neither grown
/// nor cleared); `from_whole` makes a packed whole number the type stored.
fn decode_numbers<T: pco::data_types::Number + Default>(
    encoding: u8,
    data: &[u8],
    count: usize,
    into: &mut Vec<T>,
    from_whole: impl Fn(i64) -> T,
) -> Result<()> {
    if into.len() < count {
        into.resize(count, T::default());
    }
    let into = &mut into[..count];
    match encoding {
        ENCODED_PCO => {
            let progress = simple_decompress_into(data, into).map_err(codec_error)?;
            if progress.n_processed != count || !progress.finished {
                return Err(corrupt("point count differs from its header"));
            }
        }
        ENCODED_PACKED => packed::decode(data, into, from_whole).map_err(corrupt)?,
        _ => return Err(corrupt("unknown value encoding")),
    }
    Ok(())
}

/// `(start, step)` when `times` (two or more) step evenly forward.
fn even_step(times: &[i64]) -> Option<(i64, i64)> {
    let (&first, &second) = (times.first()?, times.get(1)?);
    let step = second.checked_sub(first).filter(|&step| step > 0)?;
    times
        .windows(2)
        .all(|pair| pair[1].checked_sub(pair[0]) == Some(step))
        .then_some((first, step))
}

struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, length: usize) -> Result<&'a [u8]> {
        if self.data.len() < length {
            return Err(corrupt("truncated"));
        }
        let (head, rest) = self.data.split_at(length);
        self.data = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        let mut bytes = [0; 4];
        bytes.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(bytes))
    }

    fn i64(&mut self) -> Result<i64> {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(self.take(8)?);
        Ok(i64::from_le_bytes(bytes))
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::InvalidValue(format!("corrupt metric chunk: {what}"))
}

fn codec_error(error: pco::errors::PcoError) -> StoreError {
    StoreError::InvalidValue(format!("metric chunk codec: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::metrics::Microseconds;

    fn decode(data: &[u8], range: std::ops::RangeInclusive<i64>) -> Result<Vec<(i64, f64)>> {
        let mut decoded = Vec::new();
        decode_into::<Microseconds>(
            data,
            header_count(data),
            (*range.start(), *range.end()),
            None,
            &mut decoded,
            &mut Scratch::default(),
        )?;
        Ok(decoded)
    }

    /// The count a chunk's header gives, as its row records it.
    fn header_count(data: &[u8]) -> i32 {
        data.get(1..5)
            .map(|bytes| i32::from_le_bytes(bytes.try_into().expect("four bytes")))
            .unwrap_or(0)
    }

    fn round_trip(points: &[(i64, f64)]) -> Vec<(i64, f64)> {
        decode(&encode(points).expect("encode"), i64::MIN..=i64::MAX).expect("decode")
    }

    fn bits(points: &[(i64, f64)]) -> Vec<(i64, u64)> {
        points.iter().map(|&(t, v)| (t, v.to_bits())).collect()
    }

    #[test]
    fn evenly_stepped_points_keep_every_bit() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let points: Vec<(i64, f64)> = (0..40)
            .map(|i| {
                let value = match i {
                    5 => stale,
                    6 => f64::NAN,
                    7 => -0.0,
                    8 => f64::INFINITY,
                    _ => (i * i) as f64 * 0.1,
                };
                (1_765_000_000_000_000 + i * 15_000_000, value)
            })
            .collect();
        let data = encode(&points).expect("encode");
        assert_eq!(data[5], TIMES_STEPPED, "an even step is stored as such");
        assert_eq!(bits(&round_trip(&points)), bits(&points));
    }

    #[test]
    fn uneven_times_duplicates_and_single_points_round_trip() {
        let uneven = [(10, 1.0), (11, 2.0), (11, 3.0), (500, 4.0), (-7_000, 5.0)];
        assert_eq!(bits(&round_trip(&uneven)), bits(&uneven));
        let one = [(42, 7.5)];
        assert_eq!(bits(&round_trip(&one)), bits(&one));
        assert_eq!(round_trip(&[]), Vec::new());
    }

    #[test]
    fn decoding_keeps_only_wanted_times_and_refuses_corrupt_bytes() {
        let points: Vec<(i64, f64)> = (0..10).map(|i| (i, i as f64)).collect();
        let data = encode(&points).expect("encode");
        let kept = decode(&data, 3..=5).expect("decode");
        assert_eq!(kept, vec![(3, 3.0), (4, 4.0), (5, 5.0)]);
        for cut in [0, 1, 6, 14, data.len() - 1] {
            assert!(
                decode(&data[..cut], 0..=100).is_err(),
                "a chunk cut at {cut} bytes is refused"
            );
        }
        let mut wrong = data.clone();
        wrong[0] = 9;
        assert!(decode(&wrong, 0..=100).is_err());
        // A header whose count is not its row's is refused before the count sizes anything:
        // a corrupt count of four billion packed constants would otherwise be decoded.
        let mut huge = encode(&[(0, 7.0), (1, 7.0)]).expect("encode");
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut decoded = Vec::new();
        let refused = decode_into::<Microseconds>(
            &huge,
            2,
            (0, i64::MAX),
            None,
            &mut decoded,
            &mut Scratch::default(),
        );
        assert!(
            refused.is_err_and(|error| error.to_string().contains("differs from its row")),
            "a count other than the row's is refused"
        );
        assert!(decoded.is_empty());
        let uneven = encode(&[(1, 1.0), (5, 2.0), (6, 3.0)]).expect("encode");
        assert_eq!(
            decode(&uneven, 5..=9).expect("decode"),
            vec![(5, 2.0), (6, 3.0)]
        );
        assert_eq!(decode(&uneven, 2..=4).expect("decode"), Vec::new());
        // Ranges before, across and after the stepped points; bounds between two points.
        let stepped: Vec<(i64, f64)> = (0..10).map(|i| (100 + i * 10, i as f64)).collect();
        let data = encode(&stepped).expect("encode");
        assert_eq!(decode(&data, 0..=99).expect("decode"), Vec::new());
        assert_eq!(decode(&data, 195..=400).expect("decode"), Vec::new());
        assert_eq!(
            decode(&data, 105..=131).expect("decode"),
            vec![(110, 1.0), (120, 2.0), (130, 3.0)]
        );
        assert_eq!(decode(&data, 0..=400).expect("decode"), stepped);
        // Points a read takes from elsewhere are dropped, in range or not.
        let mut kept = Vec::new();
        decode_into::<Microseconds>(
            &data,
            10,
            (110, 160),
            Some(&|time| time == 120 || time == 150),
            &mut kept,
            &mut Scratch::default(),
        )
        .expect("decode");
        assert_eq!(kept, vec![(110, 1.0), (130, 3.0), (140, 4.0), (160, 6.0)]);
        // Descending times are stored as they are, not as a negative step.
        let descending = [(30, 1.0), (20, 2.0), (10, 3.0)];
        let data = encode(&descending).expect("encode");
        assert_eq!(data[5], ENCODED_PACKED);
        assert_eq!(bits(&round_trip(&descending)), bits(&descending));
    }

    /// The encoding byte of a chunk's values (format 2), after its times.
    fn values_encoding(data: &[u8]) -> u8 {
        match data[5] {
            TIMES_STEPPED => data[22],
            _ => {
                let length = u32::from_le_bytes(data[6..10].try_into().expect("4 bytes"));
                data[10 + length as usize]
            }
        }
    }

    #[test]
    fn whole_numbers_and_jittered_times_are_packed_and_the_rest_compressed() {
        let start = 1_765_000_000_000_000;
        let counter: Vec<(i64, f64)> = (0..240)
            .map(|i| (start + i * 15_000_000, (5_000 + i * 3 + i % 7) as f64))
            .collect();
        let data = encode(&counter).expect("encode");
        assert_eq!(
            (data[5], values_encoding(&data)),
            (TIMES_STEPPED, ENCODED_PACKED)
        );
        assert_eq!(bits(&round_trip(&counter)), bits(&counter));
        // Large, negative and wide-spread whole numbers; scrape times with a jitter.
        let spread: Vec<(i64, f64)> = (0..100)
            .map(|i| {
                let value = match i % 4 {
                    0 => -9_007_199_254_740_992.0,
                    1 => 9_007_199_254_740_992.0,
                    2 => -1.0,
                    _ => (i * 1_000_003) as f64,
                };
                (start + i * 15_000_000 + (i * 7919) % 2_000, value)
            })
            .collect();
        let data = encode(&spread).expect("encode");
        assert_eq!(data[5], ENCODED_PACKED, "jittered times are packed");
        assert_eq!(values_encoding(&data), ENCODED_PACKED);
        assert_eq!(bits(&round_trip(&spread)), bits(&spread));
        // One value that is not a whole number (or is -0.0, a NaN, an infinity, or beyond the
        // integers) sends the chunk's values to pco, every bit kept.
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        for odd in [0.5, -0.0, stale, f64::NAN, f64::INFINITY, 1e300] {
            let mut points = counter.clone();
            points[100].1 = odd;
            let data = encode(&points).expect("encode");
            assert_eq!(values_encoding(&data), ENCODED_PCO, "{odd}");
            assert_eq!(bits(&round_trip(&points)), bits(&points));
        }
        // Whole numbers too far apart to pack (deltas over 56 bits) go to pco as well.
        let apart = [(1, 1e18), (2, -1e18), (3, 0.0)];
        let data = encode(&apart).expect("encode");
        assert_eq!(values_encoding(&data), ENCODED_PCO);
        assert_eq!(bits(&round_trip(&apart)), bits(&apart));
    }

    #[test]
    fn chunks_written_in_format_1_are_read() {
        // Format 1: no values' encoding byte, values always a pco file.
        let values = [1.5, 2.0, f64::from_bits(0x7ff0_0000_0000_0002)];
        let mut stepped = vec![FORMAT_PCO_VALUES];
        stepped.extend_from_slice(&3u32.to_le_bytes());
        stepped.push(TIMES_STEPPED);
        stepped.extend_from_slice(&100i64.to_le_bytes());
        stepped.extend_from_slice(&10i64.to_le_bytes());
        stepped.extend_from_slice(&pco_compress(&values).expect("pco"));
        let read = decode(&stepped, 0..=1_000).expect("decode");
        assert_eq!(
            bits(&read),
            bits(&[(100, values[0]), (110, values[1]), (120, values[2])])
        );
        let times = pco_compress(&[5i64, 7, 6]).expect("pco");
        let mut uneven = vec![FORMAT_PCO_VALUES];
        uneven.extend_from_slice(&3u32.to_le_bytes());
        uneven.push(ENCODED_PCO);
        uneven.extend_from_slice(&(times.len() as u32).to_le_bytes());
        uneven.extend_from_slice(&times);
        uneven.extend_from_slice(&pco_compress(&values).expect("pco"));
        let read = decode(&uneven, 0..=1_000).expect("decode");
        assert_eq!(
            bits(&read),
            bits(&[(5, values[0]), (7, values[1]), (6, values[2])])
        );
        // A format 1 chunk cannot hold packed numbers.
        let mut packed_times = uneven.clone();
        packed_times[5] = ENCODED_PACKED;
        assert!(decode(&packed_times, 0..=1_000).is_err());
    }
}
