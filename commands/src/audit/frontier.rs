//! The right edge of an RFC 6962 tree: enough to know its root after every append, in
//! O(log n) memory. Verification streams any number of leaves through it.

use tlog_tiles::tlog::{self, Hash};

/// The roots of the tree's perfect subtrees, largest first (one per set bit of its size).
#[derive(Debug, Clone, Default)]
pub struct Frontier {
    peaks: Vec<Hash>,
    size: u64,
}

impl Frontier {
    /// Appends the leaf whose leaf hash is `leaf`.
    pub fn push(&mut self, leaf: Hash) {
        let mut hash = leaf;
        // Each trailing one bit of the old size is a subtree of the new leaf's height: merge.
        let mut size = self.size;
        while size & 1 == 1 {
            let left = self.peaks.pop().expect("one peak per set bit of the size");
            hash = tlog::node_hash(left, hash);
            size >>= 1;
        }
        self.peaks.push(hash);
        self.size += 1;
    }

    /// Leaves appended.
    pub fn len(&self) -> u64 {
        self.size
    }

    /// Whether no leaf was appended.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// The tree's root (RFC 6962's MTH; the hash of the empty string while it is empty).
    pub fn root(&self) -> Hash {
        let mut peaks = self.peaks.iter().rev();
        match peaks.next() {
            Some(last) => peaks.fold(*last, |right, left| tlog::node_hash(*left, right)),
            None => tlog::EMPTY_HASH,
        }
    }
}

#[cfg(test)]
mod tests {
    use tlog_tiles::tlog::HashReader;

    use super::*;
    use crate::audit::leaf_hash;

    /// The eight leaves of the Certificate Transparency test vectors (RFC 6962's reference
    /// implementation and its successors use the same ones).
    const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];

    /// The published roots of the trees over the first 1..=8 of them.
    const ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn bytes(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    fn hash(hex: &str) -> Hash {
        Hash(bytes(hex).try_into().unwrap())
    }

    /// The tree over the test leaves, as `tlog_tiles` stores it (the sealer's layout).
    #[derive(Default)]
    struct Stored(Vec<Hash>);

    impl HashReader for Stored {
        fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog::Error> {
            indexes
                .iter()
                .map(|i| {
                    self.0
                        .get(*i as usize)
                        .copied()
                        .ok_or(tlog::Error::IndexesNotInTree)
                })
                .collect()
        }
    }

    fn stored() -> Stored {
        let mut tree = Stored::default();
        for (n, leaf) in LEAVES.iter().enumerate() {
            let hashes = tlog::stored_hashes(n as u64, &bytes(leaf), &tree).unwrap();
            tree.0.extend(hashes);
        }
        tree
    }

    #[test]
    fn roots_match_the_published_vectors_after_every_append() {
        let mut frontier = Frontier::default();
        assert_eq!(
            frontier.root(),
            hash("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            "the empty tree's root is the hash of the empty string"
        );
        for (leaf, root) in LEAVES.iter().zip(ROOTS) {
            frontier.push(leaf_hash(&bytes(leaf)));
            assert_eq!(frontier.root(), hash(root), "size {}", frontier.len());
        }
        let tree = stored();
        for (size, root) in (1..=8).zip(ROOTS) {
            assert_eq!(tlog::tree_hash(size, &tree).unwrap(), hash(root));
        }
    }

    /// The published inclusion paths (leaf index, tree size, path) are what the sealer's
    /// stored tree proves, and they check against the published roots.
    #[test]
    fn inclusion_proofs_match_the_published_vectors() {
        let vectors: [(u64, u64, &[&str]); 4] = [
            (
                0,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                3,
                &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
            (
                1,
                5,
                &[
                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        let tree = stored();
        for (index, size, path) in vectors {
            let expected: Vec<Hash> = path.iter().map(|h| hash(h)).collect();
            let proof = tlog::prove_record(size, index, &tree).unwrap();
            assert_eq!(proof, expected, "leaf {index} in size {size}");
            let root = hash(ROOTS[size as usize - 1]);
            let leaf = leaf_hash(&bytes(LEAVES[index as usize]));
            tlog::check_record(&proof, size, root, index, leaf).unwrap();
            let wrong = hash(ROOTS[0]);
            assert!(tlog::check_record(&proof, size, wrong, index, leaf).is_err());
        }
    }

    /// The published consistency proofs (old size, new size, path).
    #[test]
    fn consistency_proofs_match_the_published_vectors() {
        let vectors: [(u64, u64, &[&str]); 3] = [
            (
                1,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        let tree = stored();
        for (old, new, path) in vectors {
            let expected: Vec<Hash> = path.iter().map(|h| hash(h)).collect();
            let proof = tlog::prove_tree(new, old, &tree).unwrap();
            assert_eq!(proof, expected, "{old} -> {new}");
            let (old_root, new_root) =
                (hash(ROOTS[old as usize - 1]), hash(ROOTS[new as usize - 1]));
            tlog::check_tree(&proof, new, new_root, old, old_root).unwrap();
            assert!(tlog::check_tree(&proof, new, new_root, old, new_root).is_err());
        }
    }
}
