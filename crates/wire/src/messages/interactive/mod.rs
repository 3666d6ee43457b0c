//! `interactive` messages: list, reply buttons, single- and multi-product, catalog and flow
//! messages, with every limit of the seed and `docs/onprem-api.md` section 3.2: header text 60,
//! body 1024, footer 60; list button 20, at most 10 sections and 10 rows across them, section
//! and row titles 24, row descriptions 72, row ids 200; at most 3 reply buttons with unique ids
//! (256, no leading or trailing spaces) and unique titles (20); product retailer ids 100, at
//! most 30 products; flow CTA 20.

use std::collections::HashSet;

use serde::Serialize;

mod named;

pub use self::named::{CatalogParameters, FlowParameters, FlowPayload, Named};
use self::named::{catalog, flow};
use super::field::{Item, Obj, not_allowed};
use super::media::{Media, MediaKind, Place};
use crate::{ErrorCode, Rejection};

pub const MAX_HEADER_TEXT: usize = 60;
pub const MAX_BODY_TEXT: usize = 1024;
pub const MAX_FOOTER_TEXT: usize = 60;
pub const MAX_LIST_BUTTON: usize = 20;
pub const MAX_SECTIONS: usize = 10;
pub const MAX_ROWS: usize = 10;
pub const MAX_SECTION_TITLE: usize = 24;
pub const MAX_ROW_TITLE: usize = 24;
pub const MAX_ROW_DESCRIPTION: usize = 72;
pub const MAX_ROW_ID: usize = 200;
pub const MAX_REPLY_BUTTONS: usize = 3;
pub const MAX_REPLY_ID: usize = 256;
pub const MAX_REPLY_TITLE: usize = 20;
pub const MAX_RETAILER_ID: usize = 100;
pub const MAX_PRODUCTS: usize = 30;
pub const MAX_FLOW_CTA: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Interactive {
    #[serde(rename = "type")]
    pub(crate) kind: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) header: Option<Header>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) body: Option<Text>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) footer: Option<Text>,
    pub(crate) action: Action,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    List,
    Button,
    Product,
    ProductList,
    CatalogMessage,
    Flow,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Header {
    Text { text: String },
    Image { image: Media },
    Video { video: Media },
    Document { document: Media },
}

/// `{"text": "..."}`: a body or footer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Text {
    pub(crate) text: String,
}

/// The `action` of each kind (the kind is `Interactive::kind`; parse keeps the two in step).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Action {
    List { button: String, sections: Vec<Section> },
    Buttons { buttons: Vec<ReplyButton> },
    Product { catalog_id: String, product_retailer_id: String },
    ProductList { catalog_id: String, sections: Vec<ProductSection> },
    Named(Named),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Section {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) title: Option<String>,
    pub(crate) rows: Vec<Row>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub(crate) id: String,
    pub(crate) title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplyButton {
    #[serde(rename = "type")]
    pub(crate) kind: ReplyKind,
    pub(crate) reply: Reply,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplyKind {
    Reply,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reply {
    pub(crate) id: String,
    pub(crate) title: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProductSection {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) title: Option<String>,
    pub(crate) product_items: Vec<ProductItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProductItem {
    pub(crate) product_retailer_id: String,
}

impl Interactive {
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The uploaded media id of the header, if it has one.
    pub fn media_id(&self) -> Option<&str> {
        match &self.header {
            Some(
                Header::Image { image: m }
                | Header::Video { video: m }
                | Header::Document { document: m },
            ) => m.id(),
            _ => None,
        }
    }

    pub(crate) fn parse(obj: &Obj<'_>) -> Result<Self, Rejection> {
        obj.only(&["type", "header", "body", "footer", "action"])?;
        let kind = match obj.required("type", obj.str("type")?)? {
            "list" => Kind::List,
            "button" => Kind::Button,
            "product" => Kind::Product,
            "product_list" => Kind::ProductList,
            "catalog_message" => Kind::CatalogMessage,
            "flow" => Kind::Flow,
            other => {
                return Err(Rejection::invalid(
                    &obj.at("type"),
                    format!(
                        "'{other}' is not one of list, button, product, product_list, catalog_message, flow"
                    ),
                ));
            }
        };
        let header = match obj.obj("header")? {
            None if kind == Kind::ProductList => return Err(Rejection::missing(&obj.at("header"))),
            None => None,
            Some(h) => Some(Header::parse(&h, kind)?),
        };
        let body = match obj.obj("body")? {
            None if kind == Kind::Product => None,
            None => return Err(Rejection::missing(&obj.at("body"))),
            Some(b) => Some(text(&b, MAX_BODY_TEXT)?),
        };
        let footer = obj.obj("footer")?.map(|f| text(&f, MAX_FOOTER_TEXT)).transpose()?;
        let action = obj.req_obj("action")?;
        let action = match kind {
            Kind::List => list(&action)?,
            Kind::Button => buttons(&action)?,
            Kind::Product => {
                action.only(&["catalog_id", "product_retailer_id"])?;
                Action::Product {
                    catalog_id: action.req_text("catalog_id", 256)?,
                    product_retailer_id: retailer_id(&action)?,
                }
            }
            Kind::ProductList => product_list(&action)?,
            Kind::CatalogMessage => catalog(&action)?,
            Kind::Flow => flow(&action)?,
        };
        Ok(Self { kind, header, body, footer, action })
    }
}

impl Header {
    fn parse(obj: &Obj<'_>, kind: Kind) -> Result<Self, Rejection> {
        obj.only(&["type", "text", "image", "video", "document"])?;
        let header_type = obj.required("type", obj.str("type")?)?;
        let media_allowed = matches!(kind, Kind::Button | Kind::Flow);
        let allowed = match kind {
            Kind::Button | Kind::Flow => "text, image, video, document",
            Kind::List | Kind::ProductList => "text",
            Kind::Product | Kind::CatalogMessage => {
                return Err(not_allowed(&obj.path, "for product and catalog_message messages"));
            }
        };
        let media = |m: MediaKind| -> Result<Media, Rejection> {
            for other in ["text", "image", "video", "document"] {
                if other != m.name() {
                    obj.forbid(other, &format!("in a header of type {}", m.name()))?;
                }
            }
            Media::parse(&obj.req_obj(m.name())?, m, Place::Header)
        };
        match header_type {
            "text" => {
                for other in ["image", "video", "document"] {
                    obj.forbid(other, "in a header of type text")?;
                }
                Ok(Self::Text { text: obj.req_text("text", MAX_HEADER_TEXT)? })
            }
            "image" if media_allowed => Ok(Self::Image { image: media(MediaKind::Image)? }),
            "video" if media_allowed => Ok(Self::Video { video: media(MediaKind::Video)? }),
            "document" if media_allowed => {
                Ok(Self::Document { document: media(MediaKind::Document)? })
            }
            other => Err(Rejection::invalid(
                &obj.at("type"),
                format!("'{other}' is not one of {allowed}"),
            )),
        }
    }
}

fn text(obj: &Obj<'_>, max: usize) -> Result<Text, Rejection> {
    obj.only(&["text"])?;
    Ok(Text { text: obj.req_text("text", max)? })
}

/// Ids that must be unique and free of leading or trailing spaces.
fn id(obj: &Obj<'_>, max: usize, seen: &mut HashSet<String>) -> Result<String, Rejection> {
    let id = obj.req_text("id", max)?;
    if id.trim() != id {
        return Err(Rejection::invalid(&obj.at("id"), "must not have leading or trailing spaces"));
    }
    if !seen.insert(id.clone()) {
        return Err(Rejection::invalid(&obj.at("id"), format!("'{id}' is used twice")));
    }
    Ok(id)
}

fn list(action: &Obj<'_>) -> Result<Action, Rejection> {
    action.only(&["button", "sections"])?;
    let button = action.req_text("button", MAX_LIST_BUTTON)?;
    let items = action.req_array("sections", 1, MAX_SECTIONS, ErrorCode::InvalidSectionCount)?;
    let several = items.len() > 1;
    let mut ids = HashSet::new();
    let mut rows_total = 0;
    let mut sections = Vec::with_capacity(items.len());
    for (path, value) in items {
        let section = Obj::of(path, value)?;
        section.only(&["title", "rows"])?;
        let title = section_title(&section, several)?;
        let rows = section.req_array("rows", 1, MAX_ROWS, ErrorCode::InvalidRowCount)?;
        rows_total += rows.len();
        across(&section.at("rows"), rows_total, MAX_ROWS, "rows", ErrorCode::InvalidRowCount)?;
        let rows = rows
            .into_iter()
            .map(|(path, value)| {
                let row = Obj::of(path, value)?;
                row.only(&["id", "title", "description"])?;
                Ok(Row {
                    id: id(&row, MAX_ROW_ID, &mut ids)?,
                    title: row.req_text("title", MAX_ROW_TITLE)?,
                    description: row.text("description", MAX_ROW_DESCRIPTION)?,
                })
            })
            .collect::<Result<_, Rejection>>()?;
        sections.push(Section { title, rows });
    }
    Ok(Action::List { button, sections })
}

/// A limit on the items of all sections together, reported at the section that crosses it.
fn across(
    path: &str,
    total: usize,
    max: usize,
    what: &str,
    code: ErrorCode,
) -> Result<(), Rejection> {
    if total > max {
        return Err(Rejection::new(
            code,
            format!("{path}: at most {max} {what} across all sections (got {total})"),
        ));
    }
    Ok(())
}

/// A section title: at most 24 characters, required when there is more than one section.
fn section_title(section: &Obj<'_>, several: bool) -> Result<Option<String>, Rejection> {
    if several {
        section.req_text("title", MAX_SECTION_TITLE).map(Some)
    } else {
        section.opt_nonblank("title", MAX_SECTION_TITLE)
    }
}

fn buttons(action: &Obj<'_>) -> Result<Action, Rejection> {
    action.only(&["buttons"])?;
    let items =
        action.req_array("buttons", 1, MAX_REPLY_BUTTONS, ErrorCode::ParameterValueInvalid)?;
    let (mut ids, mut titles) = (HashSet::new(), HashSet::new());
    let buttons = items
        .into_iter()
        .map(|item: Item<'_>| {
            let button = Obj::of(item.0, item.1)?;
            button.only(&["type", "reply"])?;
            match button.required("type", button.str("type")?)? {
                "reply" => {}
                other => {
                    return Err(Rejection::invalid(
                        &button.at("type"),
                        format!("'{other}' is not one of reply"),
                    ));
                }
            }
            let reply = button.req_obj("reply")?;
            reply.only(&["id", "title"])?;
            let id = id(&reply, MAX_REPLY_ID, &mut ids)?;
            let title = reply.req_text("title", MAX_REPLY_TITLE)?;
            if !titles.insert(title.clone()) {
                return Err(Rejection::invalid(
                    &reply.at("title"),
                    format!("'{title}' is used twice"),
                ));
            }
            Ok(ReplyButton { kind: ReplyKind::Reply, reply: Reply { id, title } })
        })
        .collect::<Result<_, _>>()?;
    Ok(Action::Buttons { buttons })
}

fn retailer_id(obj: &Obj<'_>) -> Result<String, Rejection> {
    obj.req_text("product_retailer_id", MAX_RETAILER_ID)
}

fn product_list(action: &Obj<'_>) -> Result<Action, Rejection> {
    action.only(&["catalog_id", "sections"])?;
    let catalog_id = action.req_text("catalog_id", 256)?;
    let items = action.req_array("sections", 1, MAX_SECTIONS, ErrorCode::InvalidSectionCount)?;
    let several = items.len() > 1;
    let mut total = 0;
    let mut sections = Vec::with_capacity(items.len());
    for (path, value) in items {
        let section = Obj::of(path, value)?;
        section.only(&["title", "product_items"])?;
        let title = section_title(&section, several)?;
        let products =
            section.req_array("product_items", 1, MAX_PRODUCTS, ErrorCode::InvalidProductCount)?;
        total += products.len();
        across(
            &section.at("product_items"),
            total,
            MAX_PRODUCTS,
            "products",
            ErrorCode::InvalidProductCount,
        )?;
        let product_items = products
            .into_iter()
            .map(|(path, value)| {
                let item = Obj::of(path, value)?;
                item.only(&["product_retailer_id"])?;
                Ok(ProductItem { product_retailer_id: retailer_id(&item)? })
            })
            .collect::<Result<_, Rejection>>()?;
        sections.push(ProductSection { title, product_items });
    }
    Ok(Action::ProductList { catalog_id, sections })
}
