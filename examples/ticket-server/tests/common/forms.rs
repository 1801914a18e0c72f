//! The forms and links of an HTML page, read well enough to drive the payment provider's
//! hosted page without a browser: each `<form>`'s action, method and named fields (with
//! their values: hidden fields carry what the provider needs back), and each `<a href>`.

/// One `<form>`.
#[allow(dead_code)]
#[derive(Debug, Clone)]
pub struct Form {
    /// Its `action`, entities decoded (empty: the page's own address).
    pub action: String,
    /// Its `method`, upper-case (`GET` when absent).
    pub method: String,
    /// Its `<input>`, `<select>` and `<textarea>` fields with a name, in order, with their
    /// values as the page gives them.
    pub fields: Vec<(String, String)>,
}

#[allow(dead_code)]
impl Form {
    /// The field whose name contains one of `needles` (case-insensitive), first match.
    pub fn field_like(&self, needles: &[&str]) -> Option<&str> {
        self.fields.iter().map(|(n, _)| n.as_str()).find(|n| {
            let n = n.to_ascii_lowercase();
            needles.iter().any(|needle| n.contains(needle))
        })
    }

    /// The fields with `values` set (by exact name), the others as the page gave them.
    pub fn filled(&self, values: &[(&str, &str)]) -> Vec<(String, String)> {
        self.fields
            .iter()
            .map(|(name, value)| {
                let v = values
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or_else(|| value.clone(), |(_, v)| (*v).to_owned());
                (name.clone(), v)
            })
            .collect()
    }
}

/// Every `<form>` of `html`.
#[allow(dead_code)]
pub fn forms(html: &str) -> Vec<Form> {
    let lower = html.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(start) = lower[at..].find("<form").map(|i| i + at) {
        let tag_end = lower[start..].find('>').map_or(lower.len(), |i| i + start);
        let end = lower[tag_end..]
            .find("</form")
            .map_or(lower.len(), |i| i + tag_end);
        let tag = &html[start..tag_end];
        let body = &html[tag_end..end];
        let mut fields = Vec::new();
        for kind in ["<input", "<select", "<textarea"] {
            let body_lower = body.to_ascii_lowercase();
            let mut i = 0;
            while let Some(f) = body_lower[i..].find(kind).map(|j| j + i) {
                let e = body_lower[f..].find('>').map_or(body.len(), |j| j + f);
                let field = &body[f..e];
                if let Some(name) = attr(field, "name") {
                    let value = attr(field, "value").unwrap_or_default();
                    fields.push((f, name, value));
                }
                i = e;
            }
        }
        fields.sort_by_key(|(at, _, _)| *at);
        out.push(Form {
            action: attr(tag, "action").unwrap_or_default(),
            method: attr(tag, "method")
                .unwrap_or_else(|| "get".into())
                .to_ascii_uppercase(),
            fields: fields.into_iter().map(|(_, n, v)| (n, v)).collect(),
        });
        at = end.max(start + 1);
    }
    out
}

/// Every `<a href>` of `html`: (href, the link's text without tags).
#[allow(dead_code)]
pub fn links(html: &str) -> Vec<(String, String)> {
    let lower = html.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(start) = lower[at..].find("<a ").map(|i| i + at) {
        let tag_end = lower[start..].find('>').map_or(lower.len(), |i| i + start);
        let end = lower[tag_end..]
            .find("</a>")
            .map_or(lower.len(), |i| i + tag_end);
        if let Some(href) = attr(&html[start..tag_end], "href") {
            out.push((href, text(&html[tag_end + 1..end])));
        }
        at = end.max(start + 1);
    }
    out
}

/// The text of `html`, tags left out, entities decoded, whitespace collapsed.
#[allow(dead_code)]
pub fn text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    decode(&out)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The value of attribute `name` in the tag text `tag` (quoted or not), entities decoded.
fn attr(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let mut from = 0;
    while let Some(i) = lower[from..].find(name).map(|i| i + from) {
        from = i + name.len();
        let before_ok = i > 0 && bytes[i - 1].is_ascii_whitespace();
        let rest = lower[from..].trim_start();
        if !before_ok || !rest.starts_with('=') {
            continue;
        }
        let offset = tag.len() - rest.len() + 1;
        let value = tag[offset..].trim_start();
        let raw = match value.chars().next() {
            Some(q @ ('"' | '\'')) => value[1..].split(q).next().unwrap_or_default(),
            _ => value
                .split(|c: char| c.is_whitespace() || c == '>')
                .next()
                .unwrap_or_default(),
        };
        return Some(decode(raw));
    }
    None
}

/// `html` with its common character references decoded.
fn decode(html: &str) -> String {
    html.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#x2F;", "/")
        .replace("&#47;", "/")
        .replace("&amp;", "&")
}

#[test]
fn forms_and_links_are_read() {
    let page = r#"<html><body><p>Pay &amp; go</p>
      <form method="post" action="/sandbox/pay/cs_1?x=1&amp;y=2">
        <input type="hidden" name="token" value="t&quot;1">
        <label>Card <input name=card_number inputmode=numeric></label>
        <input name="exp" value="12/34"><input type="submit" value="Pay">
      </form>
      <a class="x" href="http://127.0.0.1:1/?checkout=h&amp;session_id=cs_1&amp;canceled=1">Cancel and return</a>
    </body></html>"#;
    let f = forms(page);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].action, "/sandbox/pay/cs_1?x=1&y=2");
    assert_eq!(f[0].method, "POST");
    assert_eq!(
        f[0].fields,
        vec![
            ("token".to_owned(), "t\"1".to_owned()),
            ("card_number".to_owned(), String::new()),
            ("exp".to_owned(), "12/34".to_owned()),
        ]
    );
    assert_eq!(f[0].field_like(&["card", "number"]), Some("card_number"));
    let l = links(page);
    assert_eq!(
        l,
        vec![(
            "http://127.0.0.1:1/?checkout=h&session_id=cs_1&canceled=1".to_owned(),
            "Cancel and return".to_owned()
        )]
    );
    assert!(text(page).contains("Pay & go"));
}
