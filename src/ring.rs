//! A ring buffer of sliding-log entries packed into as few bytes as the limiter's parameters
//! allow.
//!
//! Each entry is two unsigned fields stored little-endian: a bucket number of `time_width`
//! bytes and a running count of `count_width` bytes. Both fields keep only their low bytes:
//! the log reconstructs full values from differences to its newest entry, which are exact
//! while every difference fits the field. The sliding log picks widths that guarantee that,
//! so a one-minute log at millisecond precision with a limit of 100 spends 3 bytes an entry.

/// One entry as stored: the low bytes of a bucket number and of a running count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackedEntry {
    pub bucket: u64,
    pub count: u64,
}

/// Entries in arrival order, oldest first.
#[derive(Clone, Debug)]
pub struct Ring {
    /// `capacity * entry_width` bytes; entry `i` sits at slot `(head + i) % capacity`.
    bytes: Box<[u8]>,
    /// Slots in `bytes`, kept so that finding an entry takes no division.
    capacity: u32,
    head: u32,
    len: u32,
    time_width: u8,
    count_width: u8,
}

/// Returns the number of bytes, from 1 to 8, that can contain every value up to `max`.
pub fn width_for(max: u64) -> u8 {
    let bits = 64 - max.leading_zeros();
    bits.div_ceil(8).max(1) as u8
}

/// Returns the largest value a field of `width` bytes can contain. Fields keep values modulo
/// this plus one.
pub fn field_mask(width: u8) -> u64 {
    if width >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * u32::from(width))) - 1
    }
}

impl Ring {
    pub fn new(time_width: u8, count_width: u8) -> Ring {
        Ring {
            bytes: Box::new([]),
            capacity: 0,
            head: 0,
            len: 0,
            time_width,
            count_width,
        }
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn widths(&self) -> (u8, u8) {
        (self.time_width, self.count_width)
    }

    /// Bytes of the entry buffer, for `MEMORY USAGE`.
    pub fn allocated_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// The entry `index` places after the oldest; `index` must be below `len`.
    pub fn get(&self, index: usize) -> PackedEntry {
        let offset = self.offset(index);
        let time_width = usize::from(self.time_width);
        let count_width = usize::from(self.count_width);
        PackedEntry {
            bucket: read_field(&self.bytes[offset..offset + time_width]),
            count: read_field(&self.bytes[offset + time_width..offset + time_width + count_width]),
        }
    }

    pub fn last(&self) -> Option<PackedEntry> {
        self.len().checked_sub(1).map(|index| self.get(index))
    }

    /// Overwrites the running count of the newest entry; the ring must not be empty.
    pub fn set_last_count(&mut self, count: u64) {
        let offset = self.offset(self.len() - 1) + usize::from(self.time_width);
        let width = usize::from(self.count_width);
        write_field(&mut self.bytes[offset..offset + width], count);
    }

    /// Appends an entry, growing the buffer up to `capacity_hint` entries at a time so that a
    /// full log spends no bytes on spare slots.
    pub fn push(&mut self, bucket: u64, count: u64, capacity_hint: usize) {
        if self.len() == self.capacity() {
            let doubled = (self.capacity() * 2).max(4);
            let capacity = doubled.min(capacity_hint).max(self.len() + 1);
            self.reallocate(capacity, self.time_width, self.count_width);
        }
        self.len += 1;
        let offset = self.offset(self.len() - 1);
        let time_width = usize::from(self.time_width);
        let count_width = usize::from(self.count_width);
        write_field(&mut self.bytes[offset..offset + time_width], bucket);
        write_field(
            &mut self.bytes[offset + time_width..offset + time_width + count_width],
            count,
        );
    }

    /// Drops the `count` oldest entries, and gives memory back once the ring is mostly empty.
    pub fn drop_oldest(&mut self, count: usize) {
        let count = count.min(self.len());
        if count == 0 {
            return;
        }
        self.head = ((self.head as usize + count) % self.capacity()) as u32;
        self.len -= count as u32;
        if self.len == 0 {
            self.head = 0;
        }
        if self.capacity() > 8 && self.len() * 4 <= self.capacity() {
            let capacity = (self.len() * 2).max(4);
            self.reallocate(capacity, self.time_width, self.count_width);
        }
    }

    /// Stores every entry again with new field widths. The caller makes sure each stored value
    /// still means the same thing in the new widths.
    pub fn set_widths(&mut self, time_width: u8, count_width: u8) {
        if (time_width, count_width) != (self.time_width, self.count_width) {
            self.reallocate(self.len().max(1), time_width, count_width);
        }
    }

    pub fn clear(&mut self) {
        *self = Ring::new(self.time_width, self.count_width);
    }

    fn capacity(&self) -> usize {
        self.capacity as usize
    }

    fn entry_width(&self) -> usize {
        usize::from(self.time_width) + usize::from(self.count_width)
    }

    /// Byte offset of entry `index`, which is below `len`. The sum of head and index is below
    /// twice the capacity, so one subtraction wraps it, where a division would cost more.
    fn offset(&self, index: usize) -> usize {
        let capacity = self.capacity();
        let mut slot = self.head as usize + index;
        if slot >= capacity {
            slot -= capacity;
        }
        slot * self.entry_width()
    }

    /// Moves the entries, oldest first, into a buffer of `capacity` entries.
    fn reallocate(&mut self, capacity: usize, time_width: u8, count_width: u8) {
        let mut ring = Ring {
            bytes: vec![0; capacity * (usize::from(time_width) + usize::from(count_width))]
                .into_boxed_slice(),
            capacity: capacity as u32,
            head: 0,
            len: 0,
            time_width,
            count_width,
        };
        let time_mask = field_mask(time_width);
        let count_mask = field_mask(count_width);
        for index in 0..self.len() {
            let entry = self.get(index);
            ring.len += 1;
            let offset = ring.offset(index);
            let time_width = usize::from(time_width);
            write_field(
                &mut ring.bytes[offset..offset + time_width],
                entry.bucket & time_mask,
            );
            let count_end = offset + time_width + usize::from(count_width);
            write_field(
                &mut ring.bytes[offset + time_width..count_end],
                entry.count & count_mask,
            );
        }
        *self = ring;
    }
}

/// Reads a little-endian field of 1 to 8 bytes.
fn read_field(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word[..bytes.len()].copy_from_slice(bytes);
    u64::from_le_bytes(word)
}

/// Writes the low bytes of `value` into a little-endian field of 1 to 8 bytes.
fn write_field(bytes: &mut [u8], value: u64) {
    let width = bytes.len();
    bytes.copy_from_slice(&value.to_le_bytes()[..width]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn width_for_covers_the_value() {
        assert_eq!(width_for(0), 1);
        assert_eq!(width_for(255), 1);
        assert_eq!(width_for(256), 2);
        assert_eq!(width_for(60_000), 2);
        assert_eq!(width_for(u64::MAX), 8);
    }

    #[test]
    fn keeps_entries_in_order_across_wraparound() {
        let mut ring = Ring::new(2, 1);
        for value in 0..4 {
            ring.push(value, value, 4);
        }
        ring.drop_oldest(2);
        ring.push(4, 4, 4);
        ring.push(5, 5, 4);
        let buckets: Vec<u64> = (0..ring.len()).map(|i| ring.get(i).bucket).collect();
        assert_eq!(buckets, vec![2, 3, 4, 5]);
        assert_eq!(ring.allocated_bytes(), 12);
    }

    #[test]
    fn fields_keep_low_bytes() {
        let mut ring = Ring::new(1, 1);
        ring.push(0x1234, 0x5678, 8);
        assert_eq!(
            ring.get(0),
            PackedEntry {
                bucket: 0x34,
                count: 0x78
            }
        );
    }

    #[test]
    fn wider_fields_keep_values() {
        let mut ring = Ring::new(1, 1);
        ring.push(200, 100, 8);
        ring.set_widths(3, 8);
        ring.push(70_000, u64::MAX, 8);
        assert_eq!(
            ring.get(0),
            PackedEntry {
                bucket: 200,
                count: 100
            }
        );
        assert_eq!(
            ring.get(1),
            PackedEntry {
                bucket: 70_000,
                count: u64::MAX
            }
        );
    }

    #[test]
    fn growth_stops_at_capacity_hint() {
        let mut ring = Ring::new(2, 1);
        for value in 0..100 {
            ring.push(value, value, 100);
        }
        assert_eq!(ring.allocated_bytes(), 300);
    }

    #[test]
    fn mostly_empty_ring_shrinks() {
        let mut ring = Ring::new(1, 1);
        for value in 0..64 {
            ring.push(value, value, 64);
        }
        ring.drop_oldest(60);
        assert_eq!(ring.len(), 4);
        assert_eq!(ring.allocated_bytes(), 16);
        assert_eq!(ring.get(0).bucket, 60);
    }
}
