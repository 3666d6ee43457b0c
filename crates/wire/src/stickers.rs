//! Stickerpacks (`/v1/stickerpacks`), as On-Premises had them: WhatsApp's first-party packs
//! (`?namespace=whatsapp`, read only) and the business's third-party packs, each
//! `{publisher, name, ios_app_store_link?, android_app_store_link?}` holding stickers
//! `{image_data_id, emojis}` (an uploaded WebP image and the emojis it stands for).
//!
//! The limits are WhatsApp's sticker rules: at most 30 stickers a pack, 1 to 3 emojis a
//! sticker, a WebP image of at most 500 KB (animated stickers' limit; static ones are usually
//! under 100 KB), names and publishers of at most 128 characters, store links http(s).

use serde::{Deserialize, Serialize};
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

/// The business's third-party packs, as one settings document: the packs in order of creation
/// and the id the next one gets. Stored as `{"packs":[...],"next_id"}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Packs {
    #[serde(default)]
    pub packs: Vec<Pack>,
    #[serde(default = "first_id")]
    pub next_id: u64,
}

const fn first_id() -> u64 {
    1
}

/// A third-party pack: its id, its fields (`publisher`, `name`, store links), its stickers and
/// the index its next sticker gets (indexes are never reused).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pack {
    pub id: String,
    #[serde(default)]
    pub stickers: Vec<Sticker>,
    #[serde(default)]
    pub next_index: u64,
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

/// A sticker: its index in the pack, its uploaded WebP image and the emojis it stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sticker {
    pub index: u64,
    pub image_data_id: String,
    pub emojis: Vec<String>,
}

/// What cannot be done to the packs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackError {
    NoPack,
    NoSticker,
    /// The pack holds [`MAX_STICKERS`] already.
    Full,
}

impl Packs {
    /// Reads the stored document (an empty or unreadable one is no packs).
    pub fn get(&self, id: &str) -> Option<&Pack> {
        self.packs.iter().find(|p| p.id == id)
    }

    fn get_mut(&mut self, id: &str) -> Result<&mut Pack, PackError> {
        self.packs.iter_mut().find(|p| p.id == id).ok_or(PackError::NoPack)
    }

    /// Adds a pack with `fields` (checked by [`pack_fields`]): its id.
    pub fn create(&mut self, fields: Map<String, Value>) -> String {
        let id = self.next_id.to_string();
        self.next_id += 1;
        self.packs.push(Pack { id: id.clone(), stickers: Vec::new(), next_index: 0, fields });
        id
    }

    /// Replaces pack `id`'s fields by `fields` (checked by [`pack_fields`]).
    pub fn update(&mut self, id: &str, fields: Map<String, Value>) -> Result<(), PackError> {
        self.get_mut(id)?.fields = fields;
        Ok(())
    }

    pub fn delete(&mut self, id: &str) -> Result<(), PackError> {
        let before = self.packs.len();
        self.packs.retain(|p| p.id != id);
        if self.packs.len() == before { Err(PackError::NoPack) } else { Ok(()) }
    }

    /// Adds a sticker to pack `id`: its index.
    pub fn add_sticker(
        &mut self,
        id: &str,
        image_data_id: String,
        emojis: Vec<String>,
    ) -> Result<u64, PackError> {
        let pack = self.get_mut(id)?;
        if pack.stickers.len() >= MAX_STICKERS {
            return Err(PackError::Full);
        }
        let index = pack.next_index;
        pack.next_index += 1;
        pack.stickers.push(Sticker { index, image_data_id, emojis });
        Ok(index)
    }

    pub fn update_sticker(
        &mut self,
        id: &str,
        index: u64,
        image_data_id: String,
        emojis: Vec<String>,
    ) -> Result<(), PackError> {
        let pack = self.get_mut(id)?;
        let sticker =
            pack.stickers.iter_mut().find(|s| s.index == index).ok_or(PackError::NoSticker)?;
        sticker.image_data_id = image_data_id;
        sticker.emojis = emojis;
        Ok(())
    }

    pub fn delete_sticker(&mut self, id: &str, index: u64) -> Result<(), PackError> {
        let pack = self.get_mut(id)?;
        let before = pack.stickers.len();
        pack.stickers.retain(|s| s.index != index);
        if pack.stickers.len() == before { Err(PackError::NoSticker) } else { Ok(()) }
    }
}

impl Pack {
    /// The pack as listed: its id and fields, without its stickers.
    pub fn view(&self) -> Value {
        let mut view = self.fields.clone();
        view.insert("id".into(), json!(self.id));
        Value::Object(view)
    }

    /// The pack with its stickers.
    pub fn with_stickers(&self) -> Value {
        let mut view = self.view();
        view["stickers"] = json!(self.stickers);
        view
    }

    pub fn sticker(&self, index: u64) -> Option<&Sticker> {
        self.stickers.iter().find(|s| s.index == index)
    }
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

    #[test]
    fn packs_keep_their_ids_and_indexes() {
        let mut packs: Packs = serde_json::from_value(json!({})).unwrap();
        let fields = pack_fields(&json!({}), &json!({"publisher": "P", "name": "N"})).unwrap();
        let id = packs.create(fields);
        assert_eq!((id.as_str(), packs.next_id), ("1", 2));
        assert_eq!(packs.add_sticker("1", "img".into(), vec!["😀".into()]), Ok(0));
        assert_eq!(packs.add_sticker("1", "img".into(), vec!["😀".into()]), Ok(1));
        assert_eq!(packs.delete_sticker("1", 1), Ok(()));
        assert_eq!(packs.add_sticker("1", "img".into(), vec!["😀".into()]), Ok(2), "never reused");
        assert_eq!(packs.delete_sticker("1", 9), Err(PackError::NoSticker));
        assert_eq!(packs.add_sticker("2", "img".into(), vec![]), Err(PackError::NoPack));
        // Stored and read back as the document it always was.
        let document = serde_json::to_value(&packs).unwrap();
        assert_eq!(document["packs"][0]["name"], "N");
        assert_eq!(document["packs"][0]["next_index"], 3);
        assert_eq!(document["packs"][0]["stickers"][1]["index"], 2);
        assert_eq!(serde_json::from_value::<Packs>(document).unwrap(), packs);
        assert_eq!(
            packs.get("1").unwrap().view(),
            json!({"id": "1", "publisher": "P", "name": "N"})
        );
        for n in packs.get("1").unwrap().stickers.len()..MAX_STICKERS {
            packs.add_sticker("1", format!("i{n}"), vec!["😀".into()]).unwrap();
        }
        assert_eq!(packs.add_sticker("1", "x".into(), vec!["😀".into()]), Err(PackError::Full));
        assert_eq!(packs.delete("1"), Ok(()));
        assert_eq!(packs.delete("1"), Err(PackError::NoPack));
    }
}
