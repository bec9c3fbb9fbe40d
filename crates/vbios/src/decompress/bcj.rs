//! The x86 BCJ filter (LZMA SDK `Bra86.c`, as EDK2's `LzmaF86Decompress` applies it with ip 0).

const MASK_TO_ALLOWED: [bool; 8] = [true, true, true, false, true, false, false, false];
const MASK_TO_BIT_NUMBER: [u32; 8] = [0, 1, 2, 2, 3, 3, 3, 3];

fn test_ms_byte(b: u8) -> bool {
    b == 0 || b == 0xFF
}

fn convert(data: &mut [u8], encoding: bool) {
    let size = data.len();
    if size < 5 {
        return;
    }
    let ip: u32 = 5;
    let mut buffer_pos = 0usize;
    let mut prev_pos_t = usize::MAX; // (SizeT)0 - 1
    let mut prev_mask: u32 = 0;
    let limit = size - 4;
    loop {
        let mut p = buffer_pos;
        while p < limit && (data[p] & 0xFE) != 0xE8 {
            p += 1;
        }
        buffer_pos = p;
        if p >= limit {
            break;
        }
        let delta = buffer_pos.wrapping_sub(prev_pos_t);
        if delta > 3 {
            prev_mask = 0;
        } else {
            prev_mask = (prev_mask << (delta as u32 - 1)) & 7;
            if prev_mask != 0 {
                let b = data[p + 4 - MASK_TO_BIT_NUMBER[prev_mask as usize] as usize];
                if !MASK_TO_ALLOWED[prev_mask as usize] || test_ms_byte(b) {
                    prev_pos_t = buffer_pos;
                    prev_mask = ((prev_mask << 1) & 7) | 1;
                    buffer_pos += 1;
                    continue;
                }
            }
        }
        prev_pos_t = buffer_pos;
        if test_ms_byte(data[p + 4]) {
            let mut src = u32::from_le_bytes([data[p + 1], data[p + 2], data[p + 3], data[p + 4]]);
            let mut dest;
            loop {
                let here = ip.wrapping_add(buffer_pos as u32);
                dest = if encoding {
                    here.wrapping_add(src)
                } else {
                    src.wrapping_sub(here)
                };
                if prev_mask == 0 {
                    break;
                }
                let index = MASK_TO_BIT_NUMBER[prev_mask as usize] * 8;
                let b = (dest >> (24 - index)) as u8;
                if !test_ms_byte(b) {
                    break;
                }
                src = dest ^ ((1u32 << (32 - index)) - 1);
            }
            data[p + 4] = !(((dest >> 24) & 1).wrapping_sub(1)) as u8;
            data[p + 3] = (dest >> 16) as u8;
            data[p + 2] = (dest >> 8) as u8;
            data[p + 1] = dest as u8;
            buffer_pos += 5;
        } else {
            prev_mask = ((prev_mask << 1) & 7) | 1;
            buffer_pos += 1;
        }
    }
}

/// Undoes the x86 BCJ filter in place (what EDK2 does after LZMA for `D42AE6BD-…` sections).
pub fn x86_decode(data: &mut [u8]) {
    convert(data, false);
}

/// Applies the x86 BCJ filter in place (for building test sections).
pub fn x86_encode(data: &mut [u8]) {
    convert(data, true);
}
