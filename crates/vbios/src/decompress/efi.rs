//! EFI 1.1 / UEFI and Tiano decompression: EDK2 `MdePkg/Library/BaseUefiDecompressLib`
//! (`UefiDecompress` with position-set width 4, `TianoDecompress` with 5), reimplemented with
//! every table index and copy bounds-checked and the output capped.

use crate::error::Error;

/// Which EDK2 flavour: they differ only in the width of the position-set count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// EFI 1.1 / UEFI standard compression (`PBIT` 4).
    Efi,
    /// Tiano compression (`PBIT` 5, larger window).
    Tiano,
}

const BITBUFSIZ: u32 = 32;
const MAXMATCH: usize = 256;
const THRESHOLD: usize = 3;
const CODE_BIT: usize = 16;
const NC: usize = 0xFF + MAXMATCH + 2 - THRESHOLD; // 510
const CBIT: u32 = 9;
const MAXPBIT: u32 = 5;
const TBIT: u32 = 5;
const MAXNP: usize = (1 << MAXPBIT) - 1; // 31
const NT: usize = CODE_BIT + 3; // 19
const NPT: usize = if NT > MAXNP { NT } else { MAXNP }; // 31
const NODES: usize = 2 * NC - 1;

struct Bad(&'static str);

struct State<'a> {
    src: &'a [u8],
    in_pos: usize,
    comp_left: usize,
    bit_buf: u32,
    sub_bit_buf: u32,
    bit_count: u32,
    block_size: u16,
    left: [u16; NODES],
    right: [u16; NODES],
    c_len: [u8; NC],
    pt_len: [u8; NPT],
    c_table: [u16; 4096],
    pt_table: [u16; 256],
    p_bit: u32,
}

impl State<'_> {
    fn fill_buf(&mut self, mut n: u32) {
        self.bit_buf = ((u64::from(self.bit_buf)) << n) as u32;
        while n > self.bit_count {
            n -= self.bit_count;
            self.bit_buf |= ((u64::from(self.sub_bit_buf)) << n) as u32;
            if self.comp_left > 0 {
                self.comp_left -= 1;
                self.sub_bit_buf = u32::from(self.src.get(self.in_pos).copied().unwrap_or(0));
                self.in_pos += 1;
            } else {
                self.sub_bit_buf = 0;
            }
            self.bit_count = 8;
        }
        self.bit_count -= n;
        self.bit_buf |= self.sub_bit_buf >> self.bit_count;
    }

    fn get_bits(&mut self, n: u32) -> u32 {
        let out = (u64::from(self.bit_buf) >> (BITBUFSIZ - n)) as u32;
        self.fill_buf(n);
        out
    }

    /// Walks the tree below a table entry, one bit per level, from bit `first` of the buffer down.
    fn walk(&self, mut val: usize, below: usize, first: u32) -> Result<usize, Bad> {
        let mut mask: u32 = 1 << (BITBUFSIZ - 1 - first);
        while val >= below {
            if mask == 0 {
                return Err(Bad("code longer than 32 bits"));
            }
            let next = if self.bit_buf & mask != 0 {
                self.right.get(val)
            } else {
                self.left.get(val)
            };
            val = *next.ok_or(Bad("tree node out of range"))? as usize;
            mask >>= 1;
        }
        Ok(val)
    }

    fn make_table(&mut self, which: Table, num_chars: usize, table_bits: u32) -> Result<(), Bad> {
        let bit_len: Vec<u8> = match which {
            Table::C => self.c_len[..num_chars].to_vec(),
            Table::Pt => self.pt_len[..num_chars].to_vec(),
        };
        let mut count = [0u16; 17];
        for &l in &bit_len {
            if l > 16 {
                return Err(Bad("code length over 16"));
            }
            count[l as usize] += 1;
        }
        let mut start = [0u16; 18];
        for i in 1..=16 {
            start[i + 1] = start[i].wrapping_add(count[i].wrapping_shl(16 - i as u32));
        }
        if start[17] != 0 {
            return Err(Bad("code lengths do not form a complete prefix code"));
        }
        let ju_bits = 16 - table_bits;
        let mut weight = [0u16; 17];
        for i in 1..=table_bits as usize {
            start[i] >>= ju_bits;
            weight[i] = 1 << (table_bits as usize - i);
        }
        for (i, w) in weight.iter_mut().enumerate().skip(table_bits as usize + 1) {
            *w = 1 << (16 - i);
        }
        let table_len = 1usize << table_bits;
        // EDK2 zeroes only the tail; an empty code would leave stale entries, so zero it all.
        match which {
            Table::C => self.c_table.fill(0),
            Table::Pt => self.pt_table.fill(0),
        }
        let mut avail = num_chars;
        let mask: u16 = 1 << (15 - table_bits);
        for (ch, &len) in bit_len.iter().enumerate() {
            let len = len as usize;
            if len == 0 {
                continue;
            }
            let next_code = start[len].wrapping_add(weight[len]);
            if len <= table_bits as usize {
                if start[len] >= next_code || next_code as usize > table_len {
                    return Err(Bad("code table overflow"));
                }
                for i in start[len]..next_code {
                    self.set(which, Slot::Table(i as usize), ch as u16)?;
                }
            } else {
                let mut index3 = start[len];
                let mut slot = Slot::Table((index3 >> ju_bits) as usize);
                for _ in 0..len - table_bits as usize {
                    if self.get(which, slot)? == 0 && avail < NODES {
                        self.right[avail] = 0;
                        self.left[avail] = 0;
                        self.set(which, slot, avail as u16)?;
                        avail += 1;
                    }
                    let node = self.get(which, slot)? as usize;
                    if node < NODES {
                        slot = if index3 & mask != 0 {
                            Slot::Right(node)
                        } else {
                            Slot::Left(node)
                        };
                    }
                    index3 <<= 1;
                }
                self.set(which, slot, ch as u16)?;
            }
            start[len] = next_code;
        }
        Ok(())
    }

    fn get(&self, which: Table, slot: Slot) -> Result<u16, Bad> {
        let v = match slot {
            Slot::Table(i) => match which {
                Table::C => self.c_table.get(i),
                Table::Pt => self.pt_table.get(i),
            },
            Slot::Left(i) => self.left.get(i),
            Slot::Right(i) => self.right.get(i),
        };
        v.copied().ok_or(Bad("table index out of range"))
    }

    fn set(&mut self, which: Table, slot: Slot, v: u16) -> Result<(), Bad> {
        let r = match slot {
            Slot::Table(i) => match which {
                Table::C => self.c_table.get_mut(i),
                Table::Pt => self.pt_table.get_mut(i),
            },
            Slot::Left(i) => self.left.get_mut(i),
            Slot::Right(i) => self.right.get_mut(i),
        };
        *r.ok_or(Bad("table index out of range"))? = v;
        Ok(())
    }

    fn read_pt_len(&mut self, nn: usize, nbit: u32, special: Option<usize>) -> Result<(), Bad> {
        let number = self.get_bits(nbit) as usize;
        if number > NPT {
            return Err(Bad("too many position/length codes"));
        }
        if number == 0 {
            let c = self.get_bits(nbit) as u16;
            if c as usize >= nn {
                return Err(Bad("single code out of range"));
            }
            self.pt_table.fill(c);
            self.pt_len[..nn].fill(0);
            return Ok(());
        }
        let mut index = 0;
        while index < number && index < NPT {
            let mut c = self.bit_buf >> (BITBUFSIZ - 3);
            if c == 7 {
                let mut mask: u32 = 1 << (BITBUFSIZ - 1 - 3);
                while mask & self.bit_buf != 0 {
                    mask >>= 1;
                    c += 1;
                }
            }
            if c > 16 {
                return Err(Bad("code length over 16"));
            }
            self.fill_buf(if c < 7 { 3 } else { c - 3 });
            self.pt_len[index] = c as u8;
            index += 1;
            if Some(index) == special {
                let zeros = self.get_bits(2) as usize;
                for _ in 0..zeros {
                    if index >= NPT {
                        break;
                    }
                    self.pt_len[index] = 0;
                    index += 1;
                }
            }
        }
        while index < nn && index < NPT {
            self.pt_len[index] = 0;
            index += 1;
        }
        self.make_table(Table::Pt, nn, 8)
    }

    fn read_c_len(&mut self) -> Result<(), Bad> {
        let number = self.get_bits(CBIT) as usize;
        if number == 0 {
            let c = self.get_bits(CBIT) as u16;
            if c as usize >= NC {
                return Err(Bad("single code out of range"));
            }
            self.c_len.fill(0);
            self.c_table.fill(c);
            return Ok(());
        }
        let mut index = 0;
        while index < number && index < NC {
            let first = *self
                .pt_table
                .get((self.bit_buf >> (BITBUFSIZ - 8)) as usize)
                .ok_or(Bad("table"))?;
            let c = self.walk(first as usize, NT, 8)?;
            let len = *self.pt_len.get(c).ok_or(Bad("code out of range"))?;
            self.fill_buf(u32::from(len));
            if c <= 2 {
                let zeros = match c {
                    0 => 1,
                    1 => self.get_bits(4) as usize + 3,
                    _ => self.get_bits(CBIT) as usize + 20,
                };
                for _ in 0..zeros {
                    if index >= NC {
                        break;
                    }
                    self.c_len[index] = 0;
                    index += 1;
                }
            } else {
                self.c_len[index] = (c - 2) as u8;
                index += 1;
            }
        }
        self.c_len[index..].fill(0);
        self.make_table(Table::C, NC, 12)
    }

    fn decode_c(&mut self) -> Result<usize, Bad> {
        if self.block_size == 0 {
            self.block_size = self.get_bits(16) as u16;
            self.read_pt_len(NT, TBIT, Some(3))?;
            self.read_c_len()?;
            self.read_pt_len(MAXNP, self.p_bit, None)?;
        }
        self.block_size = self.block_size.wrapping_sub(1);
        let first = self.c_table[(self.bit_buf >> (BITBUFSIZ - 12)) as usize];
        let c = self.walk(first as usize, NC, 12)?;
        let len = *self.c_len.get(c).ok_or(Bad("code out of range"))?;
        self.fill_buf(u32::from(len));
        Ok(c)
    }

    fn decode_p(&mut self) -> Result<usize, Bad> {
        let first = self.pt_table[(self.bit_buf >> (BITBUFSIZ - 8)) as usize];
        let val = self.walk(first as usize, MAXNP, 8)?;
        let len = *self.pt_len.get(val).ok_or(Bad("code out of range"))?;
        self.fill_buf(u32::from(len));
        if val > 1 {
            Ok((1usize << (val - 1)) + self.get_bits(val as u32 - 1) as usize)
        } else {
            Ok(val)
        }
    }
}

#[derive(Clone, Copy)]
enum Table {
    C,
    Pt,
}

#[derive(Clone, Copy)]
enum Slot {
    Table(usize),
    Left(usize),
    Right(usize),
}

/// Decompresses an EFI or Tiano stream (8-byte header: compressed size, original size, then the
/// bit stream). An original size above `limit` is refused before anything is allocated; `at`
/// names where the stream starts in errors.
pub fn decompress(
    data: &[u8],
    algorithm: Algorithm,
    limit: usize,
    at: &str,
) -> Result<Vec<u8>, Error> {
    let name = match algorithm {
        Algorithm::Efi => "EFI",
        Algorithm::Tiano => "Tiano",
    };
    let err = |reason: String| Error::Decompress {
        at: at.to_string(),
        algorithm: name.into(),
        reason,
    };
    if data.len() < 8 {
        return Err(err(format!(
            "{} bytes is shorter than the 8-byte header",
            data.len()
        )));
    }
    let comp = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let orig = u32::from_le_bytes([data[4], data[5], data[6], data[7]]) as usize;
    if comp > data.len() - 8 {
        return Err(err(format!(
            "header claims {comp:#x} compressed bytes, only {:#x} follow",
            data.len() - 8
        )));
    }
    if orig > limit {
        return Err(Error::Limit {
            at: at.to_string(),
            what: format!("{name} output ({orig} bytes by its header)"),
            limit,
        });
    }
    let mut s = State {
        src: &data[8..8 + comp],
        in_pos: 0,
        comp_left: comp,
        bit_buf: 0,
        sub_bit_buf: 0,
        bit_count: 0,
        block_size: 0,
        left: [0; NODES],
        right: [0; NODES],
        c_len: [0; NC],
        pt_len: [0; NPT],
        c_table: [0; 4096],
        pt_table: [0; 256],
        p_bit: match algorithm {
            Algorithm::Efi => 4,
            Algorithm::Tiano => 5,
        },
    };
    let mut out: Vec<u8> = Vec::with_capacity(orig);
    if orig == 0 {
        return Ok(out);
    }
    s.fill_buf(BITBUFSIZ);
    let bad = |b: Bad, out: &Vec<u8>| err(format!("{} at output byte {:#x}", b.0, out.len()));
    loop {
        let c = s.decode_c().map_err(|b| bad(b, &out))?;
        if c < 256 {
            out.push(c as u8);
        } else {
            let len = c - (256 - THRESHOLD);
            let dist = s.decode_p().map_err(|b| bad(b, &out))? + 1;
            if dist > out.len() {
                return Err(err(format!(
                    "match reaches {dist:#x} bytes back from output byte {:#x}",
                    out.len()
                )));
            }
            let from = out.len() - dist;
            for k in 0..len {
                if out.len() >= orig {
                    break;
                }
                out.push(out[from + k]);
            }
        }
        if out.len() >= orig {
            return Ok(out);
        }
    }
}
