//! Whole numbers as bit-packed deltas: the chunk encoding of a series' values when each is an
//! integer (counters, histogram buckets, byte gauges) and of its times when they do not step
//! evenly. pco compresses such runs about as well, but a chunk holds a few hundred points and
//! pco spends most of its time per chunk setting up its decoder (about 3 µs for 240 values,
//! 12 ns a value); these decode in about a nanosecond a value, so a range read decodes at the
//! speed it reads.
//!
//! Layout of `n` (one or more) numbers: the first (i64 LE), the least of the deltas between
//! neighbours (i64 LE, wrapping), the bit width `w` (1 byte, at most [`MAX_WIDTH`]), then the
//! `n - 1` deltas less that least one, `w` bits each, least significant bit first, in
//! `ceil((n - 1) * w / 8)` bytes. Deltas wrap, so any run of i64 round-trips.

/// The widest delta packed: every delta is then read with one unaligned 64-bit load (a delta
/// starts at most 7 bits into its first byte). Runs with wider deltas stay with pco.
pub(super) const MAX_WIDTH: u32 = 56;

/// The header before the packed deltas: first, least delta, width.
const HEADER: usize = 8 + 8 + 1;

/// Packs `numbers` (one or more) when their deltas fit [`MAX_WIDTH`] bits; `None` otherwise.
pub(super) fn encode(numbers: &[i64]) -> Option<Vec<u8>> {
    let (&first, _) = numbers.split_first()?;
    let deltas = || numbers.windows(2).map(|pair| pair[1].wrapping_sub(pair[0]));
    let least = deltas().min().unwrap_or(0);
    let widest = deltas()
        .map(|delta| delta.wrapping_sub(least) as u64)
        .max()
        .unwrap_or(0);
    let width = u64::BITS - widest.leading_zeros();
    if width > MAX_WIDTH {
        return None;
    }
    let packed_len = packed_len(numbers.len() - 1, width);
    // Eight bytes of room past the end, so that every delta is written with one 64-bit store.
    let mut out = vec![0u8; HEADER + packed_len + 8];
    out[..8].copy_from_slice(&first.to_le_bytes());
    out[8..16].copy_from_slice(&least.to_le_bytes());
    out[16] = width as u8;
    if width > 0 {
        let bits = &mut out[HEADER..];
        for (index, delta) in deltas().enumerate() {
            let bit = index * width as usize;
            let at = bit / 8;
            let word = u64::from_le_bytes(word_of(&bits[at..at + 8]));
            let word = word | (delta.wrapping_sub(least) as u64) << (bit % 8);
            bits[at..at + 8].copy_from_slice(&word.to_le_bytes());
        }
    }
    out.truncate(HEADER + packed_len);
    Some(out)
}

/// Unpacks exactly `into.len()` numbers (one or more) from `data`, all of it, each stored as
/// `convert` makes it (the i64 itself, or the f64 it is).
pub(super) fn decode<T>(
    data: &[u8],
    into: &mut [T],
    convert: impl Fn(i64) -> T,
) -> Result<(), &'static str> {
    if into.is_empty() {
        return Err("packed numbers with a count of zero");
    }
    if data.len() < HEADER {
        return Err("truncated");
    }
    let first = i64::from_le_bytes(word_of(&data[..8]));
    let least = i64::from_le_bytes(word_of(&data[8..16]));
    let width = u32::from(data[16]);
    if width > MAX_WIDTH {
        return Err("packed deltas wider than 56 bits");
    }
    let bits = &data[HEADER..];
    if bits.len() != packed_len(into.len() - 1, width) {
        return Err("packed deltas of a length other than their count");
    }
    let mut number = first;
    into[0] = convert(first);
    if width == 0 {
        // Every delta is the least one: a constant, or a counter rising evenly.
        for out in &mut into[1..] {
            number = number.wrapping_add(least);
            *out = convert(number);
        }
        return Ok(());
    }
    let mask = (1u64 << width) - 1;
    for (index, out) in into[1..].iter_mut().enumerate() {
        let bit = index * width as usize;
        let delta = (load(bits, bit / 8) >> (bit % 8)) & mask;
        number = number.wrapping_add(least).wrapping_add(delta as i64);
        *out = convert(number);
    }
    Ok(())
}

/// The bytes that hold `count` deltas of `width` bits.
fn packed_len(count: usize, width: u32) -> usize {
    (count * width as usize).div_ceil(8)
}

/// The 64 bits from byte `at` on (zeros past the end of `bits`).
#[inline]
fn load(bits: &[u8], at: usize) -> u64 {
    match bits.get(at..at + 8) {
        Some(word) => u64::from_le_bytes(word_of(word)),
        None => {
            let mut word = [0u8; 8];
            let tail = bits.get(at..).unwrap_or_default();
            word[..tail.len()].copy_from_slice(tail);
            u64::from_le_bytes(word)
        }
    }
}

/// Eight bytes as an array (`bytes` holds exactly eight).
#[inline]
fn word_of(bytes: &[u8]) -> [u8; 8] {
    let mut word = [0u8; 8];
    word.copy_from_slice(bytes);
    word
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(numbers: &[i64]) -> Vec<i64> {
        let data = encode(numbers).expect("packs");
        let mut out = vec![0; numbers.len()];
        decode(&data, &mut out, |n| n).expect("unpacks");
        out
    }

    #[test]
    fn runs_of_any_spread_round_trip_in_the_fewest_bytes() {
        let mut total = 1_000;
        let counter: Vec<i64> = (0..240)
            .map(|i| {
                total += 7 + (i * i) % 13;
                total
            })
            .collect();
        assert_eq!(round_trip(&counter), counter);
        // Deltas of 7 to 19 are packed as 0 to 12 over 7: 4 bits each.
        let data = encode(&counter).expect("packs");
        assert_eq!(data[16], 4);
        assert_eq!(data.len(), HEADER + (239 * 4usize).div_ceil(8));
        let constant = vec![5; 100];
        assert_eq!(round_trip(&constant), constant);
        assert_eq!(encode(&constant).expect("packs").len(), HEADER);
        let even: Vec<i64> = (0..100).map(|i| -40 + i * 3).collect();
        assert_eq!(encode(&even).expect("packs")[16], 0);
        assert_eq!(round_trip(&even), even);
        assert_eq!(round_trip(&[-3]), vec![-3]);
        let falling_and_wrapping = [i64::MAX, 0, i64::MIN, -1, 40];
        assert!(
            encode(&falling_and_wrapping).is_none(),
            "64-bit deltas stay with pco"
        );
        let widest_packed = [0, 1 << 54, 0, 1 << 54];
        assert_eq!(encode(&widest_packed).expect("packs")[16], 56);
        assert_eq!(round_trip(&widest_packed), widest_packed);
        let wide = [0, 1 << 55, 0];
        assert!(encode(&wide).is_none(), "57-bit deltas stay with pco");
        let jittered: Vec<i64> = (0..240)
            .map(|i| 1_765_000_000_000_000 + i * 15_000_000 + (i * 7919) % 3_000)
            .collect();
        assert_eq!(round_trip(&jittered), jittered);
        assert!(encode(&[]).is_none());
    }

    #[test]
    fn lengths_other_than_the_count_and_bad_widths_are_refused() {
        // Deltas 10 to 300: 9 bits each, so one number more or less changes the length.
        let data = encode(&[0, 200, 300, 600, 610]).expect("packs");
        let mut four = [0; 4];
        assert!(
            decode(&data, &mut four, |n| n).is_err(),
            "fewer numbers than packed"
        );
        let mut six = [0; 6];
        assert!(
            decode(&data, &mut six, |n| n).is_err(),
            "more numbers than packed"
        );
        for cut in 0..data.len() {
            assert!(decode(&data[..cut], &mut [0; 5], |n| n).is_err());
        }
        let mut wide = data.clone();
        wide[16] = 57;
        assert!(decode(&wide, &mut [0; 5], |n| n).is_err());
        assert!(decode(&data, &mut [], |n| n).is_err());
    }
}
