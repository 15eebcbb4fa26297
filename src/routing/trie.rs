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

    /// Keys of every stored prefix of `digits`, longest first, into `out` (cleared first).
    pub fn matches(&self, digits: &[u8], out: &mut Vec<u32>) {
        out.clear();
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
        out.reverse();
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
        let mut out = Vec::new();
        t.matches(b"12125551234", &mut out);
        assert_eq!(out, vec![2, 0, 1]);
        t.matches(b"1213", &mut out);
        assert_eq!(out, vec![1]);
        t.matches(b"44", &mut out);
        assert!(out.is_empty());
    }
}
