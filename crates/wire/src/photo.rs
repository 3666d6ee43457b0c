//! `POST /v1/settings/profile/photo`: the business's profile photo, sent as the raw bytes of a
//! JPEG or PNG image with its `Content-Type`. On-Premises took images of at most 5 MB and at
//! least 192 pixels on each side; the bytes must be the image the header names.

use crate::Rejection;

pub const MAX_PHOTO_BYTES: usize = 5 * 1024 * 1024;
pub const MIN_PHOTO_SIDE: u32 = 192;

/// The photo's MIME type once checked.
pub fn profile_photo(content_type: Option<&str>, bytes: &[u8]) -> Result<&'static str, Rejection> {
    let declared = content_type
        .map(|t| t.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
        .unwrap_or_default();
    let mime = match declared.as_str() {
        "image/jpeg" | "image/jpg" => "image/jpeg",
        "image/png" => "image/png",
        "" => return Err(Rejection::missing("Content-Type")),
        other => {
            return Err(Rejection::invalid(
                "Content-Type",
                format!("image/jpeg or image/png, not {other}"),
            ));
        }
    };
    if bytes.is_empty() {
        return Err(Rejection::missing("photo"));
    }
    if bytes.len() > MAX_PHOTO_BYTES {
        return Err(Rejection::invalid(
            "photo",
            format!("at most {MAX_PHOTO_BYTES} bytes, got {}", bytes.len()),
        ));
    }
    let size = match mime {
        "image/png" => png_size(bytes),
        _ => jpeg_size(bytes),
    }
    .ok_or_else(|| Rejection::invalid("photo", format!("not a {mime} image")))?;
    if size.0 < MIN_PHOTO_SIDE || size.1 < MIN_PHOTO_SIDE {
        return Err(Rejection::invalid(
            "photo",
            format!("at least {MIN_PHOTO_SIDE}x{MIN_PHOTO_SIDE} pixels, got {}x{}", size.0, size.1),
        ));
    }
    Ok(mime)
}

/// Width and height from a PNG's IHDR chunk.
pub fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.get(..8)? != b"\x89PNG\r\n\x1a\n" || bytes.get(12..16)? != b"IHDR" {
        return None;
    }
    let be = |at: usize| Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
    Some((be(16)?, be(20)?))
}

/// Width and height from a JPEG's first start-of-frame segment.
pub fn jpeg_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut at = 2;
    loop {
        while *bytes.get(at)? != 0xFF {
            at += 1;
        }
        while *bytes.get(at)? == 0xFF {
            at += 1;
        }
        let marker = *bytes.get(at)?;
        at += 1;
        if matches!(marker, 0xD8 | 0x01 | 0xD0..=0xD7) {
            continue;
        }
        let len = usize::from(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]));
        let is_frame = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_frame {
            let height = u16::from_be_bytes([*bytes.get(at + 3)?, *bytes.get(at + 4)?]);
            let width = u16::from_be_bytes([*bytes.get(at + 5)?, *bytes.get(at + 6)?]);
            return Some((u32::from(width), u32::from(height)));
        }
        if marker == 0xD9 || len < 2 {
            return None;
        }
        at += len;
    }
}

/// The smallest JPEG of `width` by `height` that [`jpeg_size`] reads (headers only, for
/// tests).
pub fn jpeg_header(width: u16, height: u16) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 16];
    bytes.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
    bytes.extend_from_slice(&[0xFF, 0xC0, 0, 11, 8]);
    bytes.extend_from_slice(&height.to_be_bytes());
    bytes.extend_from_slice(&width.to_be_bytes());
    bytes.extend_from_slice(&[1, 1, 0x11, 0, 0xFF, 0xD9]);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn sizes_are_read_and_checked() {
        assert_eq!(jpeg_size(&jpeg_header(640, 480)), Some((640, 480)));
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&300u32.to_be_bytes());
        png.extend_from_slice(&200u32.to_be_bytes());
        assert_eq!(png_size(&png), Some((300, 200)));
        assert_eq!(profile_photo(Some("image/png"), &png), Ok("image/png"));
        assert_eq!(profile_photo(Some("image/jpeg"), &jpeg_header(640, 640)), Ok("image/jpeg"));

        let refused = |t: Option<&str>, b: &[u8]| profile_photo(t, b).unwrap_err();
        assert!(refused(Some("image/jpeg"), &jpeg_header(191, 640)).details.contains("192x192"));
        assert!(refused(Some("image/jpeg"), &png).details.contains("not a image/jpeg"));
        assert!(refused(Some("image/gif"), &png).details.starts_with("Content-Type:"));
        assert_eq!(refused(None, &png).code, ErrorCode::RequiredParameterMissing);
        assert_eq!(refused(Some("image/png"), b"").code, ErrorCode::RequiredParameterMissing);
        let big = vec![0u8; MAX_PHOTO_BYTES + 1];
        assert!(refused(Some("image/png"), &big).details.contains("at most"));
    }
}
