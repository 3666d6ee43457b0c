//! Every limit and rule of the message contract, with the first invalid value: the rejection's
//! error code and the JSON path its `details` names. Each case starts from a valid request and
//! changes one thing; the valid request itself is checked to pass, and so is the last valid
//! value of each limit.

use premise_wire::{ErrorCode, Message};
use serde_json::{Value, json};

use ErrorCode::{
    InvalidProductCount as E2023, InvalidRecipientType as E1002, InvalidRowCount as E2016,
    InvalidSectionCount as E2015, MessageTooLong as E1001, ParameterNotRequired as E1010,
    ParameterValueInvalid as E1009, ReceiverIncapable as E1026, RequiredParameterMissing as E1008,
};

const TO: &str = "16315551234";

fn s(n: usize) -> String {
    "x".repeat(n)
}

fn text() -> Value {
    json!({"to": TO, "type": "text", "text": {"body": "hi"}})
}

fn media(kind: &str) -> Value {
    json!({"to": TO, "type": kind, kind: {"link": "https://example.com/a"}})
}

fn list() -> Value {
    json!({"to": TO, "type": "interactive", "interactive": {
        "type": "list",
        "header": {"type": "text", "text": "h"},
        "body": {"text": "b"},
        "footer": {"text": "f"},
        "action": {"button": "Menu", "sections": [
            {"title": "one", "rows": [{"id": "r1", "title": "t1", "description": "d"}]},
            {"title": "two", "rows": [{"id": "r2", "title": "t2"}, {"id": "r3", "title": "t3"}, {"id": "r4", "title": "t4"}]}
        ]}
    }})
}

fn buttons() -> Value {
    json!({"to": TO, "type": "interactive", "interactive": {
        "type": "button",
        "body": {"text": "b"},
        "action": {"buttons": [
            {"type": "reply", "reply": {"id": "a", "title": "A"}},
            {"type": "reply", "reply": {"id": "b", "title": "B"}}
        ]}
    }})
}

fn product() -> Value {
    json!({"to": TO, "type": "interactive", "interactive": {
        "type": "product", "action": {"catalog_id": "c", "product_retailer_id": "p"}
    }})
}

fn product_list() -> Value {
    json!({"to": TO, "type": "interactive", "interactive": {
        "type": "product_list",
        "header": {"type": "text", "text": "h"},
        "body": {"text": "b"},
        "action": {"catalog_id": "c", "sections": [
            {"title": "s1", "product_items": [{"product_retailer_id": "p1"}]},
            {"title": "s2", "product_items": [{"product_retailer_id": "p2"}]}
        ]}
    }})
}

fn catalog() -> Value {
    json!({"to": TO, "type": "interactive", "interactive": {
        "type": "catalog_message", "body": {"text": "b"},
        "action": {"name": "catalog_message", "parameters": {"thumbnail_product_retailer_id": "p"}}
    }})
}

fn flow() -> Value {
    json!({"to": TO, "type": "interactive", "interactive": {
        "type": "flow", "body": {"text": "b"},
        "action": {"name": "flow", "parameters": {
            "flow_message_version": "3", "flow_token": "t", "flow_id": "1", "flow_cta": "Go",
            "mode": "published", "flow_action": "navigate",
            "flow_action_payload": {"screen": "S", "data": {"k": 1}}
        }}
    }})
}

fn location() -> Value {
    json!({"to": TO, "type": "location", "location": {"latitude": 1.5, "longitude": "2.5", "name": "n", "address": "a"}})
}

fn contacts() -> Value {
    json!({"to": TO, "type": "contacts", "contacts": [{
        "name": {"formatted_name": "Alice Example", "first_name": "Alice"},
        "birthday": "2000-02-29",
        "phones": [{"phone": "+1 555", "type": "CELL", "wa_id": "15550001111"}],
        "emails": [{"email": "a@example.com", "type": "WORK"}],
        "addresses": [{"city": "c", "type": "HOME"}],
        "org": {"company": "c"},
        "urls": [{"url": "https://example.com", "type": "WORK"}]
    }]})
}

fn template() -> Value {
    json!({"to": TO, "type": "template", "template": {
        "namespace": "ns", "name": "t", "language": {"policy": "deterministic", "code": "en_US"},
        "components": [
            {"type": "header", "parameters": [{"type": "image", "image": {"id": "m1"}}]},
            {"type": "body", "parameters": [
                {"type": "text", "text": "x"},
                {"type": "currency", "currency": {"fallback_value": "$1", "code": "USD", "amount_1000": 1000}},
                {"type": "date_time", "date_time": {"fallback_value": "today"}}
            ]},
            {"type": "button", "sub_type": "quick_reply", "index": 0, "parameters": [{"type": "payload", "payload": "p"}]},
            {"type": "button", "sub_type": "url", "index": "1", "parameters": [{"type": "text", "text": "x"}]},
            {"type": "button", "sub_type": "copy_code", "index": 2, "parameters": [{"type": "coupon_code", "coupon_code": "CODE"}]}
        ]
    }})
}

fn hsm() -> Value {
    json!({"to": TO, "type": "hsm", "hsm": {
        "namespace": "ns", "element_name": "e", "language": {"policy": "deterministic", "code": "en"},
        "localizable_params": [{"default": "x"}, {"default": "$1", "currency": {"currency_code": "USD", "amount_1000": 1000}}]
    }})
}

/// `base` with the value at JSON pointer `at` replaced (or added), or removed when `None`.
fn set(mut base: Value, at: &str, value: Option<Value>) -> Value {
    let (parent, key) = at.rsplit_once('/').unwrap();
    let parent = base.pointer_mut(parent).unwrap_or_else(|| panic!("no {parent}"));
    match (parent, value) {
        (Value::Object(map), Some(v)) => {
            map.insert(key.to_owned(), v);
        }
        (Value::Object(map), None) => {
            map.remove(key);
        }
        (Value::Array(items), Some(v)) => {
            let i = key.parse::<usize>().unwrap();
            if i == items.len() { items.push(v) } else { items[i] = v }
        }
        (Value::Array(items), None) => {
            items.remove(key.parse::<usize>().unwrap());
        }
        _ => panic!("{at} is not in an object or array"),
    }
    base
}

fn rows(n: usize, prefix: &str) -> Value {
    Value::Array((0..n).map(|i| json!({"id": format!("{prefix}{i}"), "title": "t"})).collect())
}

fn items(n: usize, prefix: &str) -> Value {
    Value::Array((0..n).map(|i| json!({"product_retailer_id": format!("{prefix}{i}")})).collect())
}

fn sections(n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| json!({"title": format!("s{i}"), "rows": rows(1, &format!("s{i}r"))}))
            .collect(),
    )
}

fn reply(id: &str, title: &str) -> Value {
    json!({"type": "reply", "reply": {"id": id, "title": title}})
}

#[test]
fn valid_bases_and_last_valid_values_pass() {
    let cases = [
        text(),
        media("image"),
        media("audio"),
        media("video"),
        media("document"),
        media("sticker"),
        list(),
        buttons(),
        product(),
        product_list(),
        catalog(),
        flow(),
        location(),
        contacts(),
        template(),
        hsm(),
        set(text(), "/text/body", Some(json!(s(4096)))),
        set(text(), "/biz_opaque_callback_data", Some(json!(s(512)))),
        set(list(), "/interactive/header/text", Some(json!(s(60)))),
        set(list(), "/interactive/body/text", Some(json!(s(1024)))),
        set(list(), "/interactive/footer/text", Some(json!(s(60)))),
        set(list(), "/interactive/action/button", Some(json!(s(20)))),
        set(list(), "/interactive/action/sections/1/title", Some(json!(s(24)))),
        set(list(), "/interactive/action/sections/1/rows/2/title", Some(json!(s(24)))),
        set(list(), "/interactive/action/sections/1/rows/2/description", Some(json!(s(72)))),
        set(list(), "/interactive/action/sections/1/rows/2/id", Some(json!(s(200)))),
        set(list(), "/interactive/action/sections/1/rows", Some(rows(9, "x"))),
        set(list(), "/interactive/action/sections", Some(sections(10))),
        set(buttons(), "/interactive/action/buttons/1/reply/title", Some(json!(s(20)))),
        set(buttons(), "/interactive/action/buttons/1/reply/id", Some(json!(s(256)))),
        set(buttons(), "/interactive/action/buttons/2", Some(reply("c", "C"))),
        set(product(), "/interactive/action/product_retailer_id", Some(json!(s(100)))),
        set(product_list(), "/interactive/action/sections/1/product_items", Some(items(29, "q"))),
        set(flow(), "/interactive/action/parameters/flow_cta", Some(json!(s(20)))),
        set(template(), "/template/components/3/index", Some(json!(9))),
        set(location(), "/location/latitude", Some(json!("-90"))),
        set(location(), "/location/longitude", Some(json!(180))),
        set(text(), "/recipient_type", Some(json!("individual"))),
        set(text(), "/messaging_product", Some(json!("whatsapp"))),
        set(text(), "/context", Some(json!({"message_id": "wamid.x"}))),
        json!({"to": TO, "type": "reaction", "reaction": {"message_id": "wamid.x", "emoji": "\u{1F600}"}}),
        json!({"to": TO, "type": "reaction", "reaction": {"message_id": "wamid.x", "emoji": ""}}),
    ];
    for request in cases {
        if let Err(e) = Message::parse(&request) {
            panic!("{request} refused: {e}");
        }
    }
}

#[test]
fn first_invalid_values_are_refused_naming_the_field() {
    let cases: Vec<(Value, ErrorCode, &str)> = vec![
        // --- common fields ------------------------------------------------------------
        (set(text(), "/to", None), E1008, "'to'"),
        (set(text(), "/to", Some(json!(16315551234u64))), E1009, "to: expected a string"),
        (set(text(), "/to", Some(json!("1234"))), E1009, "to: "),
        (set(text(), "/recipient_type", Some(json!("group"))), E1002, "recipient_type"),
        (set(text(), "/recipient_type", Some(json!("crowd"))), E1002, "recipient_type"),
        (set(text(), "/type", Some(json!("voice_note"))), E1026, "type: 'voice_note'"),
        (json!({"to": TO, "type": "voice", "voice": {"id": "m"}}), E1026, "type: 'voice'"),
        (set(text(), "/type", Some(json!(3))), E1009, "type: expected a string"),
        (set(text(), "/colour", Some(json!("red"))), E1010, "'colour'"),
        (set(text(), "/messaging_product", Some(json!("sms"))), E1009, "messaging_product"),
        (
            set(text(), "/biz_opaque_callback_data", Some(json!(s(513)))),
            E1009,
            "biz_opaque_callback_data: at most 512",
        ),
        (set(text(), "/context", Some(json!({}))), E1008, "'context.message_id'"),
        (
            set(text(), "/context", Some(json!({"message_id": "m", "from": "x"}))),
            E1010,
            "'context.from'",
        ),
        (
            set(text(), "/image", Some(json!({"id": "m"}))),
            E1010,
            "image: not allowed when type is 'text'",
        ),
        (set(media("image"), "/preview_url", Some(json!(true))), E1010, "preview_url: not allowed"),
        (set(text(), "/preview_url", Some(json!(3))), E1009, "preview_url: expected a boolean"),
        (set(media("image"), "/image", None), E1008, "'image'"),
        (set(media("image"), "/image", Some(json!("m1"))), E1009, "image: expected an object"),
        // --- text -------------------------------------------------------------------
        (set(text(), "/text/body", Some(json!(s(4097)))), E1001, "text.body: at most 4096"),
        (set(text(), "/text/body", Some(json!("  "))), E1009, "text.body: must not be empty"),
        (set(text(), "/text/body", None), E1008, "'text.body'"),
        (
            set(text(), "/text/body", Some(json!(["x"]))),
            E1009,
            "text.body: expected a string, got an array",
        ),
        (set(text(), "/text/preview_url", Some(json!("yes"))), E1009, "text.preview_url"),
        (set(text(), "/text/format", Some(json!("md"))), E1010, "'text.format'"),
        // --- media ------------------------------------------------------------------
        (set(media("image"), "/image/link", None), E1008, "image: exactly one of 'id' or 'link'"),
        (
            set(media("image"), "/image/id", Some(json!("m"))),
            E1010,
            "image: exactly one of 'id' or 'link'",
        ),
        (
            set(media("image"), "/image/link", Some(json!("ftp://example.com/a"))),
            E1009,
            "image.link",
        ),
        (set(media("video"), "/video/link", Some(json!("https://"))), E1009, "video.link"),
        (
            set(media("document"), "/document/link", Some(json!("example.com/a.pdf"))),
            E1009,
            "document.link",
        ),
        (
            set(media("audio"), "/audio/caption", Some(json!("c"))),
            E1010,
            "audio.caption: not allowed",
        ),
        (
            set(media("sticker"), "/sticker/caption", Some(json!("c"))),
            E1010,
            "sticker.caption: not allowed",
        ),
        (
            set(media("image"), "/image/filename", Some(json!("a.jpg"))),
            E1010,
            "image.filename: not allowed",
        ),
        (
            set(media("image"), "/image/caption", Some(json!(s(1025)))),
            E1009,
            "image.caption: at most 1024",
        ),
        (set(media("image"), "/image/provider", Some(json!({}))), E1008, "'image.provider.name'"),
        (
            set(media("image"), "/image/provider", Some(json!("p"))),
            E1009,
            "image.provider: expected an object",
        ),
        (
            set(media("image"), "/image/mime_type", Some(json!("image/png"))),
            E1010,
            "'image.mime_type'",
        ),
        // --- location ---------------------------------------------------------------
        (
            set(location(), "/location/latitude", Some(json!(90.5))),
            E1009,
            "location.latitude: must be between",
        ),
        (
            set(location(), "/location/longitude", Some(json!("-180.1"))),
            E1009,
            "location.longitude",
        ),
        (set(location(), "/location/latitude", Some(json!("north"))), E1009, "location.latitude"),
        (
            set(location(), "/location/longitude", Some(json!(true))),
            E1009,
            "location.longitude: expected a number",
        ),
        (set(location(), "/location/name", None), E1008, "'location.name'"),
        (set(location(), "/location/address", None), E1008, "'location.address'"),
        (set(location(), "/location/latitude", None), E1008, "'location.latitude'"),
        (set(location(), "/location/url", Some(json!("u"))), E1010, "'location.url'"),
        // --- contacts ---------------------------------------------------------------
        (set(contacts(), "/contacts", Some(json!([]))), E1009, "contacts: at least 1"),
        (set(contacts(), "/contacts", Some(json!({}))), E1009, "contacts: expected an array"),
        (set(contacts(), "/contacts/0/name", None), E1008, "'contacts[0].name'"),
        (
            set(contacts(), "/contacts/0/name/formatted_name", None),
            E1008,
            "'contacts[0].name.formatted_name'",
        ),
        (
            set(contacts(), "/contacts/0/name/first_name", None),
            E1008,
            "contacts[0].name: at least one of",
        ),
        (
            set(contacts(), "/contacts/0/birthday", Some(json!("2001-02-29"))),
            E1009,
            "contacts[0].birthday",
        ),
        (
            set(contacts(), "/contacts/0/birthday", Some(json!("31/01/1990"))),
            E1009,
            "contacts[0].birthday",
        ),
        (
            set(contacts(), "/contacts/0/phones/0/wa_id", Some(json!("abc"))),
            E1009,
            "contacts[0].phones[0].wa_id",
        ),
        (
            set(contacts(), "/contacts/0/phones/0/fax", Some(json!("1"))),
            E1010,
            "'contacts[0].phones[0].fax'",
        ),
        (
            set(contacts(), "/contacts/0/emails/0/email", Some(json!(1))),
            E1009,
            "contacts[0].emails[0].email: expected a string",
        ),
        (
            set(contacts(), "/contacts/0/addresses/0/planet", Some(json!("Mars"))),
            E1010,
            "'contacts[0].addresses[0].planet'",
        ),
        (set(contacts(), "/contacts/0/org/ceo", Some(json!("x"))), E1010, "'contacts[0].org.ceo'"),
        (
            set(contacts(), "/contacts/0/urls/0/url", Some(json!({}))),
            E1009,
            "contacts[0].urls[0].url",
        ),
        // --- template ---------------------------------------------------------------
        (set(template(), "/template/name", None), E1008, "'template.name'"),
        (set(template(), "/template/language", None), E1008, "'template.language'"),
        (set(template(), "/template/language/code", None), E1008, "'template.language.code'"),
        (
            set(template(), "/template/language/code", Some(json!("English"))),
            E1009,
            "template.language.code",
        ),
        (
            set(template(), "/template/language/policy", Some(json!("best_effort"))),
            E1009,
            "template.language.policy",
        ),
        (
            set(template(), "/template/components/0/type", Some(json!("footer"))),
            E1009,
            "template.components[0].type",
        ),
        (
            set(template(), "/template/components/1/parameters/0/type", Some(json!("payload"))),
            E1009,
            "template.components[1].parameters[0].type",
        ),
        (
            set(template(), "/template/components/1/parameters/0/type", Some(json!("emoji"))),
            E1009,
            "template.components[1].parameters[0].type",
        ),
        (
            set(template(), "/template/components/1/parameters/0/text", None),
            E1008,
            "'template.components[1].parameters[0].text'",
        ),
        (
            set(
                template(),
                "/template/components/1/parameters/1/currency/code",
                Some(json!("usd")),
            ),
            E1009,
            "template.components[1].parameters[1].currency.code",
        ),
        (
            set(
                template(),
                "/template/components/1/parameters/1/currency/amount_1000",
                Some(json!("lots")),
            ),
            E1009,
            "template.components[1].parameters[1].currency.amount_1000",
        ),
        (
            set(template(), "/template/components/1/parameters/1/currency/fallback_value", None),
            E1008,
            "'template.components[1].parameters[1].currency.fallback_value'",
        ),
        (
            set(template(), "/template/components/1/parameters/2/date_time/fallback_value", None),
            E1008,
            "'template.components[1].parameters[2].date_time.fallback_value'",
        ),
        (
            set(template(), "/template/components/1/parameters/2/date_time/month", Some(json!(13))),
            E1009,
            "template.components[1].parameters[2].date_time.month",
        ),
        (
            set(
                template(),
                "/template/components/0/parameters/0/image/link",
                Some(json!("https://e.com/a")),
            ),
            E1010,
            "template.components[0].parameters[0].image: exactly one",
        ),
        (
            set(template(), "/template/components/1/sub_type", Some(json!("url"))),
            E1010,
            "template.components[1].sub_type: not allowed",
        ),
        (
            set(template(), "/template/components/2/sub_type", None),
            E1008,
            "'template.components[2].sub_type'",
        ),
        (
            set(template(), "/template/components/2/sub_type", Some(json!("call"))),
            E1009,
            "template.components[2].sub_type",
        ),
        (
            set(template(), "/template/components/2/index", Some(json!(10))),
            E1009,
            "template.components[2].index: must be between 0 and 9",
        ),
        (
            set(template(), "/template/components/2/index", Some(json!("-1"))),
            E1009,
            "template.components[2].index",
        ),
        (
            set(template(), "/template/components/2/index", Some(json!("first"))),
            E1009,
            "template.components[2].index",
        ),
        (
            set(template(), "/template/components/2/index", None),
            E1008,
            "'template.components[2].index'",
        ),
        (
            set(template(), "/template/components/2/parameters", Some(json!([]))),
            E1009,
            "template.components[2].parameters: at least 1",
        ),
        (
            set(template(), "/template/components/2/parameters/0/type", Some(json!("text"))),
            E1009,
            "template.components[2].parameters[0].type",
        ),
        (
            set(template(), "/template/components/3/parameters/0/type", Some(json!("payload"))),
            E1009,
            "template.components[3].parameters[0].type",
        ),
        (
            set(template(), "/template/components/4/parameters/0/coupon_code", Some(json!(s(16)))),
            E1009,
            "template.components[4].parameters[0].coupon_code: at most 15",
        ),
        (
            set(
                template(),
                "/template/components/0/parameters/0",
                Some(
                    json!({"type": "location", "location": {"latitude": 91, "longitude": 0, "name": "n", "address": "a"}}),
                ),
            ),
            E1009,
            "template.components[0].parameters[0].location.latitude",
        ),
        (
            set(template(), "/template/element_name", Some(json!("e"))),
            E1010,
            "'template.element_name'",
        ),
        // --- hsm --------------------------------------------------------------------
        (set(hsm(), "/hsm/element_name", None), E1008, "'hsm.element_name'"),
        (set(hsm(), "/hsm/namespace", None), E1008, "'hsm.namespace'"),
        (set(hsm(), "/hsm/localizable_params", None), E1008, "'hsm.localizable_params'"),
        (
            set(hsm(), "/hsm/localizable_params/0/default", None),
            E1008,
            "'hsm.localizable_params[0].default'",
        ),
        (
            set(hsm(), "/hsm/localizable_params/1/currency/currency_code", Some(json!("dollars"))),
            E1009,
            "hsm.localizable_params[1].currency.currency_code",
        ),
        // --- interactive: common ----------------------------------------------------
        (
            set(list(), "/interactive/type", Some(json!("carousel"))),
            E1009,
            "interactive.type: 'carousel'",
        ),
        (set(list(), "/interactive/type", None), E1008, "'interactive.type'"),
        (set(list(), "/interactive/action", None), E1008, "'interactive.action'"),
        (set(list(), "/interactive/body", None), E1008, "'interactive.body'"),
        (
            set(list(), "/interactive/header/text", Some(json!(s(61)))),
            E1009,
            "interactive.header.text: at most 60",
        ),
        (
            set(list(), "/interactive/body/text", Some(json!(s(1025)))),
            E1009,
            "interactive.body.text: at most 1024",
        ),
        (
            set(list(), "/interactive/footer/text", Some(json!(s(61)))),
            E1009,
            "interactive.footer.text: at most 60",
        ),
        (
            set(
                list(),
                "/interactive/header",
                Some(json!({"type": "image", "image": {"id": "m"}})),
            ),
            E1009,
            "interactive.header.type: 'image'",
        ),
        (
            set(
                buttons(),
                "/interactive/header",
                Some(json!({"type": "image", "image": {"id": "m", "caption": "c"}})),
            ),
            E1010,
            "interactive.header.image.caption: not allowed",
        ),
        (
            set(
                buttons(),
                "/interactive/header",
                Some(json!({"type": "text", "text": "t", "image": {"id": "m"}})),
            ),
            E1010,
            "interactive.header.image: not allowed",
        ),
        (
            set(buttons(), "/interactive/header", Some(json!({"type": "video"}))),
            E1008,
            "'interactive.header.video'",
        ),
        (
            set(product(), "/interactive/header", Some(json!({"type": "text", "text": "t"}))),
            E1010,
            "interactive.header: not allowed",
        ),
        // --- interactive: list ------------------------------------------------------
        (
            set(list(), "/interactive/action/button", Some(json!(s(21)))),
            E1009,
            "interactive.action.button: at most 20",
        ),
        (
            set(list(), "/interactive/action/button", Some(json!(""))),
            E1009,
            "interactive.action.button: must not be empty",
        ),
        (
            set(list(), "/interactive/action/sections/1/title", Some(json!(s(25)))),
            E1009,
            "interactive.action.sections[1].title: at most 24",
        ),
        (
            set(list(), "/interactive/action/sections/1/title", None),
            E1008,
            "'interactive.action.sections[1].title'",
        ),
        (
            set(list(), "/interactive/action/sections/1/rows/2/title", Some(json!(s(25)))),
            E1009,
            "interactive.action.sections[1].rows[2].title: at most 24 characters",
        ),
        (
            set(list(), "/interactive/action/sections/1/rows/2/description", Some(json!(s(73)))),
            E1009,
            "interactive.action.sections[1].rows[2].description: at most 72",
        ),
        (
            set(list(), "/interactive/action/sections/1/rows/2/id", Some(json!(s(201)))),
            E1009,
            "interactive.action.sections[1].rows[2].id: at most 200",
        ),
        (
            set(list(), "/interactive/action/sections/1/rows/2/id", Some(json!(" r9"))),
            E1009,
            "interactive.action.sections[1].rows[2].id: must not have leading or trailing spaces",
        ),
        (
            set(list(), "/interactive/action/sections/1/rows/2/id", Some(json!("r1"))),
            E1009,
            "interactive.action.sections[1].rows[2].id: 'r1' is used twice",
        ),
        (
            set(list(), "/interactive/action/sections/1/rows", Some(rows(10, "x"))),
            E2016,
            "interactive.action.sections[1].rows: at most 10 rows across all sections",
        ),
        (
            set(list(), "/interactive/action/sections/0/rows", Some(rows(11, "x"))),
            E2016,
            "interactive.action.sections[0].rows: at most 10",
        ),
        (
            set(list(), "/interactive/action/sections/1/rows", Some(json!([]))),
            E2016,
            "interactive.action.sections[1].rows: at least 1",
        ),
        (
            set(list(), "/interactive/action/sections", Some(sections(11))),
            E2015,
            "interactive.action.sections: at most 10",
        ),
        (
            set(list(), "/interactive/action/sections", Some(json!([]))),
            E2015,
            "interactive.action.sections: at least 1",
        ),
        (
            set(list(), "/interactive/action/buttons", Some(json!([]))),
            E1010,
            "'interactive.action.buttons'",
        ),
        // --- interactive: reply buttons ---------------------------------------------
        (
            set(buttons(), "/interactive/action/buttons/1/reply/title", Some(json!(s(21)))),
            E1009,
            "interactive.action.buttons[1].reply.title: at most 20",
        ),
        (
            set(buttons(), "/interactive/action/buttons/1/reply/id", Some(json!(s(257)))),
            E1009,
            "interactive.action.buttons[1].reply.id: at most 256",
        ),
        (
            set(buttons(), "/interactive/action/buttons/1/reply/id", Some(json!("b "))),
            E1009,
            "interactive.action.buttons[1].reply.id: must not have leading or trailing spaces",
        ),
        (
            set(buttons(), "/interactive/action/buttons/1/reply/id", Some(json!("a"))),
            E1009,
            "interactive.action.buttons[1].reply.id: 'a' is used twice",
        ),
        (
            set(buttons(), "/interactive/action/buttons/1/reply/title", Some(json!("A"))),
            E1009,
            "interactive.action.buttons[1].reply.title: 'A' is used twice",
        ),
        (
            set(buttons(), "/interactive/action/buttons/1/type", Some(json!("url"))),
            E1009,
            "interactive.action.buttons[1].type",
        ),
        (
            set(
                set(buttons(), "/interactive/action/buttons/2", Some(reply("c", "C"))),
                "/interactive/action/buttons/3",
                Some(reply("d", "D")),
            ),
            E1009,
            "interactive.action.buttons: at most 3",
        ),
        (
            set(buttons(), "/interactive/action/buttons", Some(json!([]))),
            E1009,
            "interactive.action.buttons: at least 1",
        ),
        // --- interactive: products --------------------------------------------------
        (
            set(product(), "/interactive/action/product_retailer_id", Some(json!(s(101)))),
            E1009,
            "interactive.action.product_retailer_id: at most 100",
        ),
        (
            set(product(), "/interactive/action/catalog_id", None),
            E1008,
            "'interactive.action.catalog_id'",
        ),
        (
            set(
                product_list(),
                "/interactive/action/sections/1/product_items/0/product_retailer_id",
                Some(json!(s(101))),
            ),
            E1009,
            "interactive.action.sections[1].product_items[0].product_retailer_id: at most 100",
        ),
        (
            set(
                product_list(),
                "/interactive/action/sections/1/product_items",
                Some(items(30, "q")),
            ),
            E2023,
            "interactive.action.sections[1].product_items: at most 30 products across all sections",
        ),
        (
            set(product_list(), "/interactive/action/sections/1/product_items", Some(json!([]))),
            E2023,
            "interactive.action.sections[1].product_items: at least 1",
        ),
        (set(product_list(), "/interactive/header", None), E1008, "'interactive.header'"),
        (
            set(product_list(), "/interactive/action/sections/0/title", Some(json!(s(25)))),
            E1009,
            "interactive.action.sections[0].title: at most 24",
        ),
        (
            set(catalog(), "/interactive/action/name", Some(json!("flow"))),
            E1009,
            "interactive.action.name",
        ),
        (
            set(
                catalog(),
                "/interactive/action/parameters/thumbnail_product_retailer_id",
                Some(json!(s(101))),
            ),
            E1009,
            "interactive.action.parameters.thumbnail_product_retailer_id: at most 100",
        ),
        // --- interactive: flow ------------------------------------------------------
        (
            set(flow(), "/interactive/action/parameters/flow_cta", Some(json!(s(21)))),
            E1009,
            "interactive.action.parameters.flow_cta: at most 20",
        ),
        (
            set(flow(), "/interactive/action/parameters/flow_message_version", Some(json!("2"))),
            E1009,
            "interactive.action.parameters.flow_message_version",
        ),
        (
            set(flow(), "/interactive/action/parameters/flow_token", None),
            E1008,
            "'interactive.action.parameters.flow_token'",
        ),
        (
            set(flow(), "/interactive/action/parameters/flow_id", None),
            E1008,
            "'interactive.action.parameters.flow_id'",
        ),
        (
            set(flow(), "/interactive/action/parameters/mode", Some(json!("live"))),
            E1009,
            "interactive.action.parameters.mode",
        ),
        (
            set(flow(), "/interactive/action/parameters/flow_action", Some(json!("jump"))),
            E1009,
            "interactive.action.parameters.flow_action",
        ),
        (
            set(flow(), "/interactive/action/parameters/flow_action", Some(json!("data_exchange"))),
            E1010,
            "interactive.action.parameters.flow_action_payload: not allowed",
        ),
        (
            set(flow(), "/interactive/action/parameters/flow_action_payload/screen", None),
            E1008,
            "'interactive.action.parameters.flow_action_payload.screen'",
        ),
        (
            set(flow(), "/interactive/action/parameters/flow_action_payload/data", Some(json!({}))),
            E1009,
            "interactive.action.parameters.flow_action_payload.data",
        ),
        (
            set(flow(), "/interactive/action/name", Some(json!("catalog_message"))),
            E1009,
            "interactive.action.name",
        ),
        // --- reaction ---------------------------------------------------------------
        (
            json!({"to": TO, "type": "reaction", "reaction": {"emoji": "x"}}),
            E1008,
            "'reaction.message_id'",
        ),
        (
            json!({"to": TO, "type": "reaction", "reaction": {"message_id": "m"}}),
            E1008,
            "'reaction.emoji'",
        ),
    ];
    let mut failures = Vec::new();
    for (request, code, part) in &cases {
        match Message::parse(request) {
            Ok(_) => {
                failures.push(format!("accepted, expected {} '{part}': {request}", code.code()));
            }
            Err(e) if e.code != *code || !e.details.contains(part) => failures.push(format!(
                "expected {} '{part}', got {} '{}'",
                code.code(),
                e.code.code(),
                e.details
            )),
            Err(_) => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn every_rejection_maps_to_a_cloud_code_and_an_http_status() {
    for code in [E1001, E1002, E1008, E1009, E1010, E1026, E2015, E2016, E2023] {
        assert!(code.cloud_code() >= 100, "{code:?}");
        assert!([400, 501].contains(&code.http_status()), "{code:?}");
    }
}
