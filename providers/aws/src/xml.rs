//! Small helpers over roxmltree for the AWS Query APIs' XML: EC2 lists are
//! `<item>` children of a `…Set` element with lowerCamel names; ELBv2 lists are
//! `<member>` children with UpperCamel names. Namespaces are ignored.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use roxmltree::{Document, Node};

/// The parsed document, or why it is not XML.
pub fn parse(xml: &str) -> Result<Document<'_>, String> {
    Document::parse(xml).map_err(|e| format!("bad XML: {e}"))
}

/// The first child element called `name`.
pub fn child<'a, 'i>(n: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    n.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

/// The first descendant element called `name` (depth first, the node itself included).
pub fn descendant<'a, 'i>(n: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    n.descendants()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

/// The trimmed text of the child `name`; None when missing or empty.
pub fn text<'a>(n: Node<'a, '_>, name: &str) -> Option<&'a str> {
    child(n, name)
        .and_then(|c| c.text())
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The text of the child `name` as an owned string, empty when missing.
pub fn string(n: Node<'_, '_>, name: &str) -> String {
    text(n, name).unwrap_or_default().to_string()
}

/// The text of the child `name` as an owned string, None when missing.
pub fn opt_string(n: Node<'_, '_>, name: &str) -> Option<String> {
    text(n, name).map(str::to_string)
}

/// `true`/`false` children.
pub fn boolean(n: Node<'_, '_>, name: &str) -> Option<bool> {
    match text(n, name)? {
        t if t.eq_ignore_ascii_case("true") => Some(true),
        t if t.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// A numeric child.
pub fn number<T: std::str::FromStr>(n: Node<'_, '_>, name: &str) -> Option<T> {
    text(n, name).and_then(|t| t.parse().ok())
}

/// An IPv4 address child.
pub fn ip(n: Node<'_, '_>, name: &str) -> Option<Ipv4Addr> {
    text(n, name).and_then(|t| t.parse().ok())
}

/// An IPv4 CIDR child (IPv6 ones are None).
pub fn cidr(n: Node<'_, '_>, name: &str) -> Option<Ipv4Net> {
    text(n, name).and_then(|t| t.parse::<Ipv4Net>().ok())
}

/// The list elements (`item` or `member`) under the child `set`.
pub fn items<'a, 'i>(n: Node<'a, 'i>, set: &str) -> Vec<Node<'a, 'i>> {
    child(n, set).map(list).unwrap_or_default()
}

/// The list elements (`item` or `member`) of a set element.
pub fn list<'a, 'i>(set: Node<'a, 'i>) -> Vec<Node<'a, 'i>> {
    set.children()
        .filter(|c| c.is_element() && matches!(c.tag_name().name(), "item" | "member"))
        .collect()
}

/// The texts of the list elements under `set`, or of their child `field` when given.
pub fn strings(n: Node<'_, '_>, set: &str, field: Option<&str>) -> Vec<String> {
    items(n, set)
        .into_iter()
        .filter_map(|i| match field {
            Some(f) => opt_string(i, f),
            None => i.text().map(str::trim).map(str::to_string),
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// An API error: `<Code>` and `<Message>` anywhere in the document
/// (EC2: `Response/Errors/Error`, ELBv2: `ErrorResponse/Error`).
pub fn api_error(xml: &str) -> Option<(String, String)> {
    let doc = Document::parse(xml).ok()?;
    let root = doc.root_element();
    let code = descendant(root, "Code")?.text()?.trim().to_string();
    let message = descendant(root, "Message")
        .and_then(|m| m.text())
        .map(|m| m.trim().to_string())
        .unwrap_or_default();
    Some((code, message))
}
