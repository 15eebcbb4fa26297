//! A digit trie mapping number prefixes to dense key ids; shared by every route's rates so that a
//! dip walks one structure once per lookup number, whatever the number of routes.

const NONE: u32 = u32::MAX;

#[derive(Clone, Debug)]
struct Node {
    child: [u32; 10],
    key: u32,
}

impl Node {
    fn empty() -> Node {
        Node {
            child: [NONE; 10],
            key: NONE,
        }
    }
}

/// The keys a number matched, longest prefix first; a fixed array, so a dip does not allocate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyMatches {
    keys: [u32; KeyMatches::CAPACITY],
    len: u8,
}

impl KeyMatches {
    pub const CAPACITY: usize = 24;

    fn push(&mut self, k: u32) {
        if let Some(slot) = self.keys.get_mut(self.len as usize) {
            *slot = k;
            self.len += 1;
        }
    }

    pub fn as_slice(&self) -> &[u32] {
        &self.keys[..self.len as usize]
    }
}

/// Maps digit strings to key ids. Keys are assigned by the caller (dense, from 0).
#[derive(Clone, Debug)]
pub struct DigitTrie {
    nodes: Vec<Node>,
}

impl Default for DigitTrie {
    fn default() -> Self {
        DigitTrie {
            nodes: vec![Node::empty()],
        }
    }
}

impl DigitTrie {
    /// Key of `digits` if present, else stores `new_key` and returns it. Non-digits are refused.
    pub fn get_or_insert(&mut self, digits: &[u8], new_key: u32) -> Option<u32> {
        let mut at = 0usize;
        for &d in digits {
            let i = d.wrapping_sub(b'0');
            if i > 9 {
                return None;
            }
            let next = self.nodes[at].child[i as usize];
            at = if next == NONE {
                let n = self.nodes.len() as u32;
                self.nodes.push(Node::empty());
                self.nodes[at].child[i as usize] = n;
                n as usize
            } else {
                next as usize
            };
        }
        if self.nodes[at].key == NONE {
            self.nodes[at].key = new_key;
        }
        Some(self.nodes[at].key)
    }

    /// Keys of every stored prefix of `digits`, longest first. No allocation: at most
    /// [`KeyMatches::CAPACITY`] prefixes are kept (E.164 numbers have at most 15 digits).
    pub fn matches(&self, digits: &[u8]) -> KeyMatches {
        let mut out = KeyMatches::default();
        let mut at = 0usize;
        if self.nodes[0].key != NONE {
            out.push(self.nodes[0].key);
        }
        for &d in digits {
            let i = d.wrapping_sub(b'0');
            if i > 9 {
                break;
            }
            let next = self.nodes[at].child[i as usize];
            if next == NONE {
                break;
            }
            at = next as usize;
            if self.nodes[at].key != NONE {
                out.push(self.nodes[at].key);
            }
        }
        out.keys[..out.len as usize].reverse();
        out
    }

    /// Calls `f(prefix, key)` for every stored prefix, in lexicographic digit order.
    pub fn for_each(&self, mut f: impl FnMut(&[u8], u32)) {
        let mut path = Vec::new();
        // (node, next child digit to visit)
        let mut stack = vec![(0usize, 0u8)];
        if self.nodes[0].key != NONE {
            f(&path, self.nodes[0].key);
        }
        while let Some(top) = stack.last_mut() {
            let (at, d) = *top;
            if d == 10 {
                stack.pop();
                path.pop();
                continue;
            }
            top.1 += 1;
            let next = self.nodes[at].child[d as usize];
            if next != NONE {
                path.push(b'0' + d);
                if self.nodes[next as usize].key != NONE {
                    f(&path, self.nodes[next as usize].key);
                }
                stack.push((next as usize, 0));
            }
        }
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn shrink(&mut self) {
        self.nodes.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_first() {
        let mut t = DigitTrie::default();
        assert_eq!(t.get_or_insert(b"1212", 0), Some(0));
        assert_eq!(t.get_or_insert(b"1", 1), Some(1));
        assert_eq!(t.get_or_insert(b"1212555", 2), Some(2));
        assert_eq!(t.get_or_insert(b"1212", 9), Some(0));
        assert_eq!(t.get_or_insert(b"12a", 9), None);
        assert_eq!(t.matches(b"12125551234").as_slice(), &[2, 0, 1]);
        assert_eq!(t.matches(b"1213").as_slice(), &[1]);
        assert!(t.matches(b"44").as_slice().is_empty());
        let mut all = vec![];
        t.for_each(|p, k| all.push((String::from_utf8_lossy(p).into_owned(), k)));
        assert_eq!(
            all,
            [("1".into(), 1), ("1212".into(), 0), ("1212555".into(), 2)]
        );
    }
}
