//! Stickerpacks (`/v1/stickerpacks`), as On-Premises had them: WhatsApp's first-party packs
//! (`?namespace=whatsapp`, read only) and the business's third-party packs, each
//! `{publisher, name, ios_app_store_link?, android_app_store_link?}` holding stickers
//! `{image_data_id, emojis}` (an uploaded WebP image and the emojis it stands for).
//!
//! The limits are WhatsApp's sticker rules: at most 30 stickers a pack, 1 to 3 emojis a
//! sticker, a WebP image of at most 500 KB (animated stickers' limit; static ones are usually
//! under 100 KB), names and publishers of at most 128 characters, store links http(s).

use serde_json::{Map, Value, json};

use crate::Rejection;
use crate::fields::{object, optional_text, text};

pub const MAX_STICKERS: usize = 30;
pub const MAX_EMOJIS: usize = 3;
pub const MAX_STICKER_BYTES: u64 = 500 * 1024;
pub const MAX_TEXT: usize = 128;
pub const MAX_LINK: usize = 512;

/// The namespace of WhatsApp's own packs.
pub const FIRST_PARTY: &str = "whatsapp";

/// A pack's fields after a POST (`current` empty) or a PATCH (the fields it names replace
/// those of `current`).
pub fn pack_fields(current: &Value, body: &Value) -> Result<Map<String, Value>, Rejection> {
    let body = object("stickerpack", body)?;
    let creating = current.as_object().is_none_or(Map::is_empty);
    let mut fields = current.as_object().cloned().unwrap_or_default();
    for key in body.keys() {
        if !matches!(
            key.as_str(),
            "publisher" | "name" | "ios_app_store_link" | "android_app_store_link"
        ) {
            return Err(Rejection::invalid(key, "not a stickerpack field"));
        }
    }
    for name in ["publisher", "name"] {
        if creating || body.contains_key(name) {
            fields.insert(name.into(), json!(text(body, name, name, 1, MAX_TEXT)?));
        }
    }
    for name in ["ios_app_store_link", "android_app_store_link"] {
        if let Some(link) = optional_text(body, name, name, MAX_LINK)? {
            let web = link.starts_with("https://") || link.starts_with("http://");
            if !(link.is_empty() || web) {
                return Err(Rejection::invalid(name, "a link starting with https://"));
            }
            fields.insert(name.into(), json!(link));
        }
    }
    if body.is_empty() {
        return Err(Rejection::missing("name"));
    }
    Ok(fields)
}

/// A sticker's `image_data_id` and emojis after a POST (`current` empty) or a PATCH.
pub fn sticker_fields(current: &Value, body: &Value) -> Result<(String, Vec<String>), Rejection> {
    let body = object("sticker", body)?;
    for key in body.keys() {
        if !matches!(key.as_str(), "image_data_id" | "emojis") {
            return Err(Rejection::invalid(key, "not a sticker field"));
        }
    }
    let image = match (body.contains_key("image_data_id"), current["image_data_id"].as_str()) {
        (false, Some(image)) => image.to_owned(),
        _ => text(body, "image_data_id", "image_data_id", 1, 256)?,
    };
    let emojis = match (body.get("emojis"), current.get("emojis")) {
        (None, Some(emojis)) => emojis.clone(),
        (None, None) => return Err(Rejection::missing("emojis")),
        (Some(emojis), _) => emojis.clone(),
    };
    let Some(list) = emojis.as_array() else {
        return Err(Rejection::invalid("emojis", "expected an array of emojis"));
    };
    if list.is_empty() || list.len() > MAX_EMOJIS {
        return Err(Rejection::invalid("emojis", format!("1 to {MAX_EMOJIS} emojis")));
    }
    let mut checked = Vec::new();
    for (i, emoji) in list.iter().enumerate() {
        match emoji.as_str() {
            Some(e) if !e.is_empty() && e.chars().count() <= 16 && !e.is_ascii() => {
                checked.push(e.to_owned());
            }
            _ => return Err(Rejection::invalid(&format!("emojis[{i}]"), "expected an emoji")),
        }
    }
    Ok((image, checked))
}

/// WhatsApp's first-party packs as the sandbox offers them: `(id, name, stickers' emojis)`.
pub const FIRST_PARTY_PACKS: [(&str, &str, &[&str]); 2] = [
    ("whatsapp-cuppy", "Cuppy", &["☕", "😊", "👋"]),
    ("whatsapp-biscuit", "Biscuit", &["🍪", "😂", "❤️"]),
];

/// A first-party pack's view, or one of its stickers' (`index`).
pub fn first_party_pack(id: &str) -> Option<Value> {
    let (id, name, emojis) = FIRST_PARTY_PACKS.iter().find(|(pack, _, _)| *pack == id)?;
    let stickers: Vec<Value> = emojis
        .iter()
        .enumerate()
        .map(|(index, emoji)| json!({ "index": index, "emojis": [emoji] }))
        .collect();
    Some(json!({ "id": id, "name": name, "publisher": "WhatsApp", "stickers": stickers }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_and_stickers_are_checked() {
        let pack = pack_fields(
            &json!({}),
            &json!({"publisher": "Lucky Shrub", "name": "Shrubs",
            "android_app_store_link": "https://play.google.com/store/apps/details?id=x"}),
        )
        .unwrap();
        assert_eq!(pack["name"], "Shrubs");
        let patched = pack_fields(&Value::Object(pack), &json!({"name": "Shrubs 2"})).unwrap();
        assert_eq!(
            (patched["name"].as_str(), patched["publisher"].as_str()),
            (Some("Shrubs 2"), Some("Lucky Shrub"))
        );
        let refused = |body: Value| pack_fields(&json!({}), &body).unwrap_err().details;
        assert!(refused(json!({"name": "x"})).contains("'publisher'"));
        assert!(refused(json!({"name": "a".repeat(129), "publisher": "p"})).starts_with("name:"));
        assert!(
            refused(json!({"name": "n", "publisher": "p", "ios_app_store_link": "ftp://x"}))
                .starts_with("ios_app_store_link:")
        );

        let (image, emojis) =
            sticker_fields(&json!({}), &json!({"image_data_id": "m1", "emojis": ["🐥", "😃"]}))
                .unwrap();
        assert_eq!((image.as_str(), emojis.len()), ("m1", 2));
        let refused = |body: Value| sticker_fields(&json!({}), &body).unwrap_err().details;
        assert!(refused(json!({"image_data_id": "m1", "emojis": []})).starts_with("emojis:"));
        assert!(refused(json!({"image_data_id": "m1", "emojis": ["a"]})).starts_with("emojis[0]:"));
        assert!(
            refused(json!({"image_data_id": "m1", "emojis": ["😃", "😃", "😃", "😃"]}))
                .starts_with("emojis:")
        );
        assert!(refused(json!({"emojis": ["😃"]})).contains("'image_data_id'"));
        assert_eq!(
            first_party_pack("whatsapp-cuppy").unwrap()["stickers"].as_array().unwrap().len(),
            3
        );
    }
}
