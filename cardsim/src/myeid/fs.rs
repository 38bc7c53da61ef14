//! The MyEID card's file system (MyEID reference manual, "File system" and
//! "CREATE FILE"): the MF `3F00`, DFs, transparent EFs and key EFs, each
//! with the FCP the card returns on SELECT and takes in CREATE FILE
//! (ISO/IEC 7816-4 §5.3.3, tags `80`/`81` size, `82` descriptor, `83` FID,
//! `84` DF name, `85` proprietary, `86` access conditions, `8A` life cycle).
//!
//! Access conditions are three bytes of four nibbles: for an EF READ,
//! UPDATE, DELETE, (unused); for a key EF CRYPTO (use), UPDATE, DELETE,
//! GENERATE; for a DF CREATE DF, CREATE EF, DELETE. A nibble is `0` (always),
//! `1..=E` (PIN reference that must be verified) or `F` (never).

use std::collections::BTreeMap;

use crate::apdu::{put_tlv, read_all, sw};
use crate::keys::PrivateKey;

/// The MF's file identifier.
pub(crate) const MF: u16 = 0x3F00;
/// File descriptor byte of a DF.
pub(crate) const DESC_DF: u8 = 0x38;
/// File descriptor byte of a transparent working EF.
pub(crate) const DESC_EF: u8 = 0x01;
/// File descriptor byte (EF structure) of an RSA key EF.
pub(crate) const DESC_RSA: u8 = 0x11;
/// File descriptor byte (EF structure) of an EC key EF.
pub(crate) const DESC_EC: u8 = 0x22;
/// The largest transparent EF the simulated card creates.
const MAX_EF_SIZE: u16 = 0x7FFF;

/// An operation guarded by one access-condition nibble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// EF: READ BINARY; key EF: signing/deciphering (CRYPTO); DF: CREATE DF.
    ReadOrUse,
    /// EF/key EF: UPDATE BINARY, key load; DF: CREATE EF.
    UpdateOrCreate,
    /// DELETE FILE.
    Delete,
    /// Key EF: GENERATE KEY PAIR.
    Generate,
}

/// One file: what kind, its FCP fields and its contents.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// File descriptor byte ([`DESC_DF`], [`DESC_EF`], [`DESC_RSA`], [`DESC_EC`]).
    pub descriptor: u8,
    /// EF size in bytes, key EF size in bits, 0 for a DF.
    pub size: u16,
    pub acl: [u8; 3],
    pub prop: [u8; 2],
    /// DF name (AID), empty if none.
    pub name: Vec<u8>,
    /// A transparent EF's contents (`size` bytes, zero-filled at creation).
    pub data: Vec<u8>,
    /// A key EF's key, once generated.
    pub key: Option<PrivateKey>,
}

impl Node {
    /// A DF with these access conditions.
    pub fn df(acl: [u8; 3], name: Vec<u8>) -> Self {
        Node {
            descriptor: DESC_DF,
            size: 0,
            acl,
            prop: [0; 2],
            name,
            data: Vec::new(),
            key: None,
        }
    }

    pub fn is_df(&self) -> bool {
        self.descriptor == DESC_DF
    }

    pub fn is_key(&self) -> bool {
        matches!(self.descriptor, DESC_RSA | DESC_EC)
    }

    /// The nibble that guards `op`.
    pub fn condition(&self, op: Op) -> u8 {
        match op {
            Op::ReadOrUse => self.acl[0] >> 4,
            Op::UpdateOrCreate => self.acl[0] & 0x0F,
            Op::Delete => self.acl[1] >> 4,
            Op::Generate => self.acl[1] & 0x0F,
        }
    }

    /// The FCP template (`62`) for SELECT.
    pub fn fcp(&self, fid: u16, life_cycle: u8) -> Vec<u8> {
        let mut body = Vec::with_capacity(40);
        if !self.is_df() {
            put_tlv(&mut body, &[0x80], &self.size.to_be_bytes());
        }
        put_tlv(&mut body, &[0x82], &[self.descriptor]);
        put_tlv(&mut body, &[0x83], &fid.to_be_bytes());
        if !self.name.is_empty() {
            put_tlv(&mut body, &[0x84], &self.name);
        }
        put_tlv(&mut body, &[0x85], &self.prop);
        put_tlv(&mut body, &[0x86], &self.acl);
        put_tlv(&mut body, &[0x8A], &[life_cycle]);
        let mut out = Vec::with_capacity(body.len() + 2);
        put_tlv(&mut out, &[0x62], &body);
        out
    }

    /// Parses CREATE FILE's FCP: the new file and its FID.
    pub fn from_fcp(fcp: &[u8]) -> Result<(u16, Node), u16> {
        let items = read_all(fcp).ok_or(sw::WRONG_DATA)?;
        let [(&[0x62], body)] = items.as_slice() else {
            return Err(sw::WRONG_DATA);
        };
        let mut node = Node::df([0xFF; 3], Vec::new());
        let (mut fid, mut descriptor) = (None, None);
        for (tag, value) in read_all(body).ok_or(sw::WRONG_DATA)? {
            match (tag, value) {
                (&[0x80 | 0x81], &[hi, lo]) => node.size = u16::from_be_bytes([hi, lo]),
                (&[0x82], &[d, ..]) => descriptor = Some(d),
                (&[0x83], &[hi, lo]) => fid = Some(u16::from_be_bytes([hi, lo])),
                (&[0x84], name) if name.len() <= 16 => node.name = name.to_vec(),
                (&[0x85], &[a, b]) => node.prop = [a, b],
                (&[0x86], &[a, b, c]) => node.acl = [a, b, c],
                (&[0x8A], _) => {}
                _ => return Err(sw::WRONG_DATA),
            }
        }
        let fid = fid
            .filter(|&f| f != MF && f != 0xFFFF)
            .ok_or(sw::WRONG_DATA)?;
        node.descriptor = descriptor.ok_or(sw::WRONG_DATA)?;
        match node.descriptor {
            DESC_DF => node.size = 0,
            DESC_EF if node.size <= MAX_EF_SIZE => node.data = vec![0; usize::from(node.size)],
            DESC_RSA if matches!(node.size, 1024 | 2048) => {}
            DESC_EC if node.size == 256 => {}
            _ => return Err(sw::WRONG_DATA),
        }
        if !node.is_df() {
            node.name.clear();
        }
        Ok((fid, node))
    }
}

/// A file's place: the FIDs from the MF down, MF included (`[3F00, 5015, 4401]`).
pub(crate) type FilePath = Vec<u16>;

/// Every file of the card by path.
#[derive(Debug, Clone, Default)]
pub(crate) struct FileSystem {
    nodes: BTreeMap<FilePath, Node>,
}

impl FileSystem {
    /// A file system holding only an MF with `acl`.
    pub fn with_mf(acl: [u8; 3]) -> Self {
        let mut fs = FileSystem::default();
        fs.nodes.insert(vec![MF], Node::df(acl, Vec::new()));
        fs
    }

    pub fn get(&self, path: &[u16]) -> Option<&Node> {
        self.nodes.get(path)
    }

    pub fn get_mut(&mut self, path: &[u16]) -> Option<&mut Node> {
        self.nodes.get_mut(path)
    }

    /// Every file, parents before children.
    pub fn iter(&self) -> impl Iterator<Item = (&FilePath, &Node)> {
        self.nodes.iter()
    }

    /// Adds `node` as `fid` under the DF `parent`; `6A89` if it exists.
    pub fn create(&mut self, parent: &[u16], fid: u16, node: Node) -> Result<FilePath, u16> {
        if !self.get(parent).is_some_and(Node::is_df) {
            return Err(sw::NOT_FOUND);
        }
        let mut path = parent.to_vec();
        path.push(fid);
        if self.nodes.contains_key(&path) || parent.last() == Some(&fid) {
            return Err(FILE_EXISTS);
        }
        self.nodes.insert(path.clone(), node);
        Ok(path)
    }

    /// Inserts a file at `path` as loaded from an image (its parent must exist).
    pub fn insert_loaded(&mut self, path: FilePath, node: Node) -> Result<(), String> {
        match path.split_last() {
            Some((_, parent))
                if !parent.is_empty() && !self.get(parent).is_some_and(Node::is_df) =>
            {
                Err(format!("file {path:04X?} comes before its DF"))
            }
            _ => {
                self.nodes.insert(path, node);
                Ok(())
            }
        }
    }

    /// Removes the file at `path` and, for a DF, everything under it.
    pub fn delete(&mut self, path: &[u16]) {
        self.nodes.retain(|p, _| !p.starts_with(path));
    }

    /// The path of DF name `name`, if a DF has it.
    pub fn find_df_name(&self, name: &[u8]) -> Option<FilePath> {
        self.nodes
            .iter()
            .find(|(_, n)| n.is_df() && n.name == name)
            .map(|(p, _)| p.clone())
    }

    /// Walks `fids` down from the DF `start`.
    pub fn walk(&self, start: &[u16], fids: &[u16]) -> Option<FilePath> {
        let mut path = start.to_vec();
        for &fid in fids {
            if !self.get(&path)?.is_df() {
                return None;
            }
            path.push(fid);
            self.get(&path)?;
        }
        Some(path)
    }
}

/// `6A89`: file already exists (ISO/IEC 7816-4 Table 6).
pub(crate) const FILE_EXISTS: u16 = 0x6A89;
