//! A growable list kept in fixed-size chunks: pushing never moves what is already stored. The
//! findings keep one [`super::ending::Ending`] per finished connection, up to
//! [`super::MAX_ENDINGS`]; in a `Vec` the doubling left up to half its capacity unused and
//! briefly held the old and the new buffer together (71 MiB for 200,000 endings where 54 were
//! used). Here at most one chunk is partly empty. (No crate in our dependencies does this; the
//! ones that do bring an arena or unsafe code for what is forty lines.)

use std::ops::Index;

/// Items per chunk: big enough that the chunk list stays small, small enough that the unused
/// tail of the last chunk does not matter (a few hundred KiB).
const CHUNK: usize = 1024;

/// A list of `T`, stored in chunks of [`CHUNK`].
#[derive(Debug, Clone)]
pub struct Chunked<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Chunked<T> {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `item`.
    pub fn push(&mut self, item: T) {
        match self.chunks.last_mut() {
            Some(last) if last.len() < CHUNK => last.push(item),
            _ => {
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.push(item);
                self.chunks.push(chunk);
            }
        }
        self.len += 1;
    }

    /// Items stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Nothing stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The item at `i`, if any.
    pub fn get(&self, i: usize) -> Option<&T> {
        self.chunks.get(i / CHUNK)?.get(i % CHUNK)
    }

    /// The items in the order pushed.
    pub fn iter(&self) -> impl Iterator<Item = &T> + Clone + '_ {
        self.chunks.iter().flatten()
    }
}

impl<T> Index<usize> for Chunked<T> {
    type Output = T;

    fn index(&self, i: usize) -> &T {
        match self.get(i) {
            Some(item) => item,
            None => panic!("bug: index {i} past {} items", self.len),
        }
    }
}

impl<T> FromIterator<T> for Chunked<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        let mut list = Chunked::new();
        for item in items {
            list.push(item);
        }
        list
    }
}

impl<T> Extend<T> for Chunked<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, items: I) {
        for item in items {
            self.push(item);
        }
    }
}

impl<T> IntoIterator for Chunked<T> {
    type Item = T;
    type IntoIter = std::iter::Flatten<std::vec::IntoIter<Vec<T>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.chunks.into_iter().flatten()
    }
}

impl<'a, T> IntoIterator for &'a Chunked<T> {
    type Item = &'a T;
    type IntoIter = std::iter::Flatten<std::slice::Iter<'a, Vec<T>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.chunks.iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_keep_their_order_and_index_across_chunks() {
        let n = CHUNK * 3 + 7;
        let list: Chunked<usize> = (0..n).collect();
        assert_eq!(list.len(), n);
        assert!(list.iter().copied().eq(0..n));
        for i in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, n - 1] {
            assert_eq!(list[i], i);
        }
        assert_eq!(list.get(n), None);
        assert_eq!(list.iter().last(), Some(&(n - 1)));
    }

    #[test]
    fn stored_items_never_move() {
        let mut list = Chunked::new();
        list.push(String::from("first"));
        let at = &list[0] as *const String;
        for i in 0..CHUNK * 4 {
            list.push(i.to_string());
        }
        assert_eq!(&list[0] as *const String, at);
        assert_eq!(list.chunks.iter().filter(|c| c.len() < CHUNK).count(), 1);
    }

    #[test]
    fn an_empty_list_holds_nothing() {
        let list: Chunked<u8> = Chunked::new();
        assert!(list.is_empty());
        assert_eq!(list.iter().count(), 0);
        assert_eq!(list.chunks.capacity(), 0);
    }
}
