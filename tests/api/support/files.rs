//! Real files for requests that take one: a baseline JPEG (a uniform grey square, decodable by
//! any JPEG decoder), a lossless WebP (one pixel) and a small PDF.

/// A baseline JPEG of `side` x `side` pixels (a multiple of 8), one grey component: every
/// 8x8 block has a zero DC difference and no AC coefficients, coded with one-code Huffman
/// tables.
pub fn jpeg(side: u16) -> Vec<u8> {
    assert!(side.is_multiple_of(8) && side > 0);
    let mut out = vec![0xFF, 0xD8];
    // APP0 JFIF.
    out.extend_from_slice(&[0xFF, 0xE0, 0, 16]);
    out.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
    // DQT: table 0, all ones.
    out.extend_from_slice(&[0xFF, 0xDB, 0, 67, 0]);
    out.extend_from_slice(&[1u8; 64]);
    // SOF0: 8-bit, side x side, one component (id 1, no subsampling, table 0).
    out.extend_from_slice(&[0xFF, 0xC0, 0, 11, 8]);
    out.extend_from_slice(&side.to_be_bytes());
    out.extend_from_slice(&side.to_be_bytes());
    out.extend_from_slice(&[1, 1, 0x11, 0]);
    // DHT: DC table 0 and AC table 0, each one code of length 1 for symbol 0 (DC: no
    // difference; AC: end of block).
    for class in [0x00u8, 0x10] {
        out.extend_from_slice(&[0xFF, 0xC4, 0, 20, class, 1]);
        out.extend_from_slice(&[0u8; 15]);
        out.push(0);
    }
    // SOS: one component, tables 0/0, full spectral range.
    out.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 1, 0x00, 0, 63, 0]);
    // Two zero bits a block: all zero bytes, no stuffing needed; padded with ones.
    let blocks = usize::from(side / 8) * usize::from(side / 8);
    let bits = blocks * 2;
    out.extend(std::iter::repeat_n(0u8, bits / 8));
    if !bits.is_multiple_of(8) {
        out.push(0xFF >> (bits % 8));
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

/// A one-pixel lossless WebP.
pub fn webp() -> Vec<u8> {
    vec![
        0x52, 0x49, 0x46, 0x46, 0x1a, 0x00, 0x00, 0x00, 0x57, 0x45, 0x42, 0x50, 0x56, 0x50, 0x38,
        0x4c, 0x0d, 0x00, 0x00, 0x00, 0x2f, 0x00, 0x00, 0x00, 0x10, 0x07, 0x10, 0x11, 0x11, 0x88,
        0x88, 0xfe, 0x07, 0x00,
    ]
}

/// A one-page PDF.
pub fn pdf() -> Vec<u8> {
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n".to_vec()
}
