//! Secret redaction: every value marked secret, and every value derived from
//! one, is replaced by `***` before anything leaves the runner, in each form
//! it can take on the way out.
//!
//! A secret is hidden as written and as it reads once encoded:
//!
//! - in a URL (percent-encoded, a space as `+` or `%20`, upper- or lowercase
//!   hex, encoded twice), in JSON text (`\"`, `\/`, `\u00e9`, surrogate
//!   pairs) and as HTML character references (`&#233;`, `&amp;`), any mix of
//!   them, since encoders differ in what they escape;
//! - re-encoded by a server: its non-ASCII characters as Latin-1 bytes
//!   (percent-encoded, or read back as UTF-8, which gives `U+FFFD`), or its
//!   UTF-8 bytes read as Latin-1 or Windows-1252 (`cafÃ©`);
//! - in base64 (standard and URL-safe, with and without padding) wherever it
//!   stands in the encoded data, so `base64("qa:" ~ secret)` hides the part
//!   that comes from the secret, and in hex (lower- and uppercase).
//!
//! Values derived from a secret (a rendered template that read one, a
//! capture computed from one) are hidden the same way, but only from
//! [`MIN_DERIVED`] characters on: `{{ 'yes' if token else 'no' }}` must not
//! hide every "no" of a report. Secrets themselves are hidden at any length.
//!
//! This module only finds and replaces; what is secret is decided by the
//! runner (variables, captures, templates) and by the step kinds
//! (`basic_auth.password`).

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use regex::{Regex, RegexBuilder};
use serde_json::Value as Json;

use crate::events::StepReport;

/// What a secret is replaced by.
pub(crate) const MASK: &str = "***";

/// The shortest value derived from a secret that is hidden.
pub(crate) const MIN_DERIVED: usize = 4;

/// Secrets longer than this (a key file, a whole request body) are hidden
/// in a few literal forms only, which keeps the pattern small.
const LONG: usize = 1024;

/// The secret strings of one spec run, and the matcher built from them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Redactor {
    /// Every secret once, as given.
    secrets: Vec<String>,
    /// Those of [`Redactor::secrets`] that were derived from another (a
    /// rendered template): their start says nothing of a secret
    /// (`token=…`, `http://…`), so a text cut short is not judged by it.
    derived: Vec<bool>,
    /// Values derived from a secret that hold a known form of one
    /// (`Bearer <token>`, a URL with it in its query): hidden whole where
    /// they stand as written or JSON-escaped, longest first. The secret in
    /// them is hidden in every form anyway, so they need no pattern of
    /// their own, and a step that renders a new one compiles nothing.
    wholes: Vec<String>,
    /// Built on first use and shared by clones: a spec's steps all start
    /// from one redactor and compile its pattern once.
    matcher: Arc<OnceLock<Matcher>>,
}

/// What finds the secrets in a text.
#[derive(Debug)]
struct Matcher {
    /// Every form of every secret up to [`LONG`] bytes, longest secrets first.
    regex: Option<Regex>,
    /// The start of every form, for texts cut short (`…`); built when one
    /// is first seen.
    starts: OnceLock<Option<Regex>>,
    /// The pattern of [`Matcher::starts`].
    starts_pattern: String,
    /// Literal forms of longer secrets (and of all, should the pattern
    /// grow too large), longest first.
    literals: Vec<String>,
}

impl Redactor {
    /// Adds a secret, hidden at any length in every form it can take.
    pub(crate) fn add(&mut self, secret: &str) {
        self.insert(secret, false);
    }

    /// Adds a value derived from a secret, as [`Redactor::add_derived_all`].
    #[cfg(test)]
    fn add_derived(&mut self, value: &str) {
        self.add_derived_all([value], true);
    }

    /// Adds values derived from a secret, each hidden whole when it has at
    /// least [`MIN_DERIVED`] characters. One that holds a known form of a
    /// secret is hidden whole only with `wholes` (within the step that made
    /// it; elsewhere the secret in it is hidden); one that does not (an
    /// upper-cased secret, the base64 of a short one) is hidden like a
    /// secret, in every form.
    pub(crate) fn add_derived_all<'v>(
        &mut self,
        values: impl IntoIterator<Item = &'v str>,
        wholes: bool,
    ) {
        let values: Vec<&str> = values
            .into_iter()
            .filter(|v| v.chars().count() >= MIN_DERIVED)
            .collect();
        // judged by what is known before any of them is added, so that the
        // pattern is built once
        let (held, own): (Vec<&str>, Vec<&str>) = values.into_iter().partition(|v| self.finds(v));
        if wholes {
            for value in held {
                for form in [value.to_string(), json_escaped(value)] {
                    if !self.wholes.contains(&form) {
                        self.wholes.push(form);
                    }
                }
            }
            self.wholes.sort_by_key(|w| std::cmp::Reverse(w.len()));
        }
        for value in own {
            self.insert(value, true);
        }
    }

    fn insert(&mut self, secret: &str, derived: bool) {
        if secret.is_empty() {
            return;
        }
        match self.secrets.iter().position(|s| s == secret) {
            Some(at) if self.derived[at] && !derived => self.derived[at] = false,
            Some(_) => return,
            None => {
                self.secrets.push(secret.to_string());
                self.derived.push(derived);
            }
        }
        self.matcher = Arc::default();
    }

    /// Adds every string (and number) inside a JSON value.
    pub(crate) fn add_json(&mut self, value: &Json) {
        match value {
            Json::String(s) => self.add(s),
            Json::Number(n) => self.add(&n.to_string()),
            Json::Array(items) => items.iter().for_each(|v| self.add_json(v)),
            Json::Object(map) => map.values().for_each(|v| self.add_json(v)),
            Json::Null | Json::Bool(_) => {}
        }
    }

    /// Adds every string inside JSON values derived from a secret (numbers
    /// and booleans say too little to hide them everywhere), as
    /// [`Redactor::add_derived_all`] does.
    pub(crate) fn add_derived_json<'v>(
        &mut self,
        values: impl IntoIterator<Item = &'v Json>,
        wholes: bool,
    ) {
        let mut strings = Vec::new();
        for value in values {
            strings_of(value, &mut strings);
        }
        self.add_derived_all(strings, wholes);
    }

    /// Whether there is anything to hide.
    pub(crate) fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    fn matcher(&self) -> &Matcher {
        self.matcher
            .get_or_init(|| Matcher::new(&self.secrets, &self.derived))
    }

    /// Text with secrets hidden.
    pub(crate) fn text(&self, text: &str) -> String {
        self.hide(text).into_owned()
    }

    /// Text with secrets hidden, borrowed when there were none.
    pub(crate) fn hide<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if self.secrets.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut out = Cow::Borrowed(text);
        for whole in &self.wholes {
            if out.contains(whole.as_str()) {
                out = Cow::Owned(out.replace(whole.as_str(), MASK));
            }
        }
        let hidden = match self.matcher().hide(&out) {
            Cow::Owned(hidden) => Some(hidden),
            Cow::Borrowed(_) => None,
        };
        match hidden {
            Some(hidden) => Cow::Owned(hidden),
            None => out,
        }
    }

    /// Text with every secret's characters replaced by `*`, byte for byte,
    /// so that spans into it still fit; `None` when it holds none.
    pub(crate) fn star(&self, text: &str) -> Option<String> {
        if self.secrets.is_empty() {
            return None;
        }
        let matcher = self.matcher();
        let mut found: Vec<std::ops::Range<usize>> = Vec::new();
        for form in &matcher.literals {
            found.extend(
                text.match_indices(form.as_str())
                    .map(|(at, f)| at..at + f.len()),
            );
        }
        if let Some(re) = &matcher.regex {
            found.extend(re.find_iter(text).map(|m| m.range()));
        }
        if found.is_empty() {
            return None;
        }
        let mut bytes = text.as_bytes().to_vec();
        for range in found {
            bytes[range].fill(b'*');
        }
        // whole characters were replaced by ASCII: still UTF-8
        String::from_utf8(bytes).ok()
    }

    /// Whether a secret, in any of its forms, is in `text`.
    pub(crate) fn finds(&self, text: &str) -> bool {
        !self.secrets.is_empty()
            && (self.wholes.iter().any(|w| text.contains(w.as_str())) || self.matcher().finds(text))
    }

    /// Whether a secret is in any string of `value`, or `value` is a
    /// number that is one.
    pub(crate) fn finds_in_json(&self, value: &Json) -> bool {
        if self.secrets.is_empty() {
            return false;
        }
        match value {
            Json::String(s) => self.finds(s),
            Json::Number(n) => self.is_secret_number(n),
            Json::Array(items) => items.iter().any(|v| self.finds_in_json(v)),
            Json::Object(map) => map
                .iter()
                .any(|(k, v)| self.finds(k) || self.finds_in_json(v)),
            Json::Null | Json::Bool(_) => false,
        }
    }

    fn is_secret_number(&self, n: &serde_json::Number) -> bool {
        let text = n.to_string();
        self.secrets.contains(&text)
    }

    /// A JSON value with secrets hidden in every string and key.
    pub(crate) fn json(&self, value: &mut Json) {
        if self.secrets.is_empty() {
            return;
        }
        match value {
            Json::String(s) => {
                if let Cow::Owned(hidden) = self.hide(s) {
                    *s = hidden;
                }
            }
            Json::Number(n) if self.is_secret_number(n) => {
                *value = Json::String(String::from(MASK));
            }
            Json::Array(items) => items.iter_mut().for_each(|v| self.json(v)),
            Json::Object(map) => {
                if map.keys().any(|k| self.finds(k)) {
                    let entries = std::mem::take(map);
                    for (k, mut v) in entries {
                        self.json(&mut v);
                        map.insert(self.text(&k), v);
                    }
                } else {
                    map.values_mut().for_each(|v| self.json(v));
                }
            }
            _ => {}
        }
    }

    /// Every string value of a table (request headers) that holds a
    /// secret, hidden whole: `Basic ***` would still say how it was built.
    pub(crate) fn hide_whole_values(&self, table: &mut Json) {
        if self.secrets.is_empty() {
            return;
        }
        if let Json::Object(map) = table {
            for value in map.values_mut() {
                if self.finds_in_json(value) {
                    *value = Json::String(String::from(MASK));
                }
            }
        }
    }

    /// A step report with secrets hidden everywhere.
    pub(crate) fn report(&self, report: &mut StepReport) {
        if self.secrets.is_empty() {
            return;
        }
        if let Some(r) = &mut report.result {
            self.json(r);
        }
        for (_, v) in &mut report.captures {
            self.json(v);
        }
        for e in &mut report.expectations {
            e.target = self.text(&e.target);
            e.message = self.text(&e.message);
            e.expected = self.text(&e.expected);
            if let Some(a) = &mut e.actual {
                self.json(a);
            }
            e.diff = e.diff.as_deref().map(|d| self.text(d));
        }
        if let Some(err) = &mut report.error {
            err.message = self.text(&err.message);
            err.help = err.help.as_deref().map(|h| self.text(h));
        }
        if let Some(reason) = &mut report.skip_reason {
            *reason = self.text(reason);
        }
        // hidden once already, before it was cut; this catches secrets
        // captured since by steps running beside it
        for e in &mut report.evidence {
            e.text = self.text(&e.text);
        }
        if let Some(iterations) = &mut report.iterations {
            let warned = iterations.first_warning.as_deref_mut();
            for failure in iterations.failures.iter_mut().chain(warned) {
                if let Some(item) = &mut failure.item {
                    self.json(&mut item.value);
                }
                self.report(&mut failure.report);
            }
        }
    }
}

impl Matcher {
    fn new(secrets: &[String], derived: &[bool]) -> Matcher {
        let mut sorted: Vec<(&str, bool)> = secrets
            .iter()
            .map(String::as_str)
            .zip(derived.iter().copied())
            .collect();
        // longest first, so a secret that contains another is hidden whole
        sorted.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        let (short, long): (Vec<_>, Vec<_>) = sorted.iter().partition(|(s, _)| s.len() <= LONG);
        let mut literals: Vec<String> = long.iter().flat_map(|(s, _)| literal_forms(s)).collect();
        let forms: Vec<(Form, bool)> = short
            .iter()
            .flat_map(|(s, derived)| forms(s).into_iter().map(|f| (f, *derived)))
            .collect();
        let build = |pattern: String| {
            RegexBuilder::new(&pattern)
                .size_limit(64 << 20)
                .dfa_size_limit(16 << 20)
                .build()
                .ok()
        };
        let regex = if forms.is_empty() {
            None
        } else {
            build(
                forms
                    .iter()
                    .map(|(f, _)| f.pattern())
                    .collect::<Vec<_>>()
                    .join("|"),
            )
        };
        let starts_pattern = forms
            .iter()
            .filter(|(_, derived)| !derived)
            .map(|(f, _)| f.start_pattern())
            .collect::<Vec<_>>()
            .join("|");
        if regex.is_none() {
            // too large a pattern: the literal forms still hide them
            literals.extend(short.iter().flat_map(|(s, _)| literal_forms(s)));
        }
        literals.sort_by_key(|s| std::cmp::Reverse(s.len()));
        literals.dedup();
        Matcher {
            regex,
            starts: OnceLock::new(),
            starts_pattern,
            literals,
        }
    }

    fn hide<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut out = Cow::Borrowed(text);
        for form in &self.literals {
            if out.contains(form.as_str()) {
                out = Cow::Owned(out.replace(form.as_str(), MASK));
            }
        }
        if let Some(re) = &self.regex
            && let Cow::Owned(hidden) = re.replace_all(&out, MASK)
        {
            out = Cow::Owned(hidden);
        }
        // a value cut for a message before it was hidden keeps the start
        // of a secret, up to the mark
        if out.contains('…') {
            out = self.hide_cut(out);
        }
        out
    }

    /// Hides, before each `…`, what follows the start of a secret.
    fn hide_cut<'t>(&self, text: Cow<'t, str>) -> Cow<'t, str> {
        let starts = self.starts.get_or_init(|| {
            if self.starts_pattern.is_empty() {
                return None;
            }
            RegexBuilder::new(&self.starts_pattern)
                .size_limit(16 << 20)
                .build()
                .ok()
        });
        let Some(starts) = starts else {
            return text;
        };
        let mut out = String::new();
        let mut done = 0;
        for (at, _) in text.match_indices('…') {
            let mut from = at.saturating_sub(CUT_ROOM).max(done);
            while !text.is_char_boundary(from) {
                from += 1;
            }
            if let Some(found) = starts.find(&text[from..at]) {
                out.push_str(&text[done..from + found.start()]);
                out.push_str(MASK);
                done = at;
            }
        }
        if done == 0 {
            return text;
        }
        out.push_str(&text[done..]);
        Cow::Owned(out)
    }

    fn finds(&self, text: &str) -> bool {
        self.literals.iter().any(|f| text.contains(f.as_str()))
            || self.regex.as_ref().is_some_and(|re| re.is_match(text))
    }
}

/// One form of a secret as a pattern: an optional lead (the character a
/// base64 form shares with what comes before), one piece per character, and
/// an optional tail (the character it shares with what follows, padding).
struct Form {
    lead: String,
    units: Vec<String>,
    tail: String,
}

impl Form {
    /// The form whole.
    fn pattern(&self) -> String {
        format!("{}{}{}", self.lead, self.units.concat(), self.tail)
    }

    /// The form's first characters: where a text that was cut short for a
    /// message (`…`) shows the start of the secret.
    fn start_pattern(&self) -> String {
        let start = self.units.len().min(CUT_START);
        format!("{}{}", self.lead, self.units[..start].concat())
    }
}

/// How many characters of a secret, at least, make a cut text's end hidden.
const CUT_START: usize = 4;

/// How far before a cut (`…`) the start of a secret is looked for: messages
/// cut values at 120 characters.
const CUT_ROOM: usize = 256;

/// Every form of one secret: its text in any mix of escapes, its base64 at
/// each alignment in both alphabets, its hex.
fn forms(secret: &str) -> Vec<Form> {
    let mut forms = vec![Form {
        lead: String::new(),
        units: secret.chars().map(char_pattern).collect(),
        tail: String::new(),
    }];
    let bytes = secret.as_bytes();
    // shorter secrets are hidden as text only: their encodings are too
    // short to tell apart from other data
    if bytes.len() >= 3 {
        for url_safe in [false, true] {
            for shift in 0..3 {
                forms.extend(base64_form(bytes, shift, url_safe));
            }
        }
        let hex = hex_lower(bytes);
        for hex in [hex.to_ascii_uppercase(), hex] {
            forms.push(Form {
                lead: String::new(),
                units: hex.chars().map(String::from).collect(),
                tail: String::new(),
            });
        }
    }
    forms
}

/// One character as written, percent-encoded (UTF-8 or Latin-1, once or
/// more), JSON-escaped (once or more), as an HTML character reference, or
/// re-encoded by a server (UTF-8 bytes read as Latin-1 or Windows-1252, a
/// Latin-1 byte read as UTF-8).
fn char_pattern(c: char) -> String {
    // no encoder escapes letters and digits
    if c.is_ascii_alphanumeric() {
        return c.to_string();
    }
    let mut alternatives = vec![literal(c)];
    let mut utf8 = [0u8; 4];
    let utf8 = c.encode_utf8(&mut utf8).as_bytes();
    let code = u32::from(c);
    // percent-encoding, the `%` itself encoded again by another pass
    alternatives.push(utf8.iter().map(|b| percent(*b)).collect());
    if c == ' ' {
        alternatives.push(String::from(r"\+"));
    }
    if (0x80..=0xff).contains(&code) {
        alternatives.push(percent(code as u8));
    }
    // JSON, the backslash itself escaped again by another pass
    let short = match c {
        '"' => Some("\""),
        '\\' => Some(r"\\"),
        '/' => Some("/"),
        '\n' => Some("n"),
        '\r' => Some("r"),
        '\t' => Some("t"),
        '\u{8}' => Some("b"),
        '\u{c}' => Some("f"),
        _ => None,
    };
    alternatives.extend(short.map(|e| format!(r"\\+{e}")));
    let mut units = [0u16; 2];
    alternatives.push(
        c.encode_utf16(&mut units)
            .iter()
            .fold(String::new(), |mut out, u| {
                let _ = write!(out, r"\\+u{}", any_case(&format!("{u:04x}")));
                out
            }),
    );
    // HTML, the `&` itself escaped again by another pass
    alternatives.push(format!("&(?:amp;)*#0*{code};"));
    alternatives.push(format!(
        "&(?:amp;)*#[xX]0*{};",
        any_case(&format!("{code:x}"))
    ));
    let named = match c {
        '&' => Some("amp"),
        '<' => Some("lt"),
        '>' => Some("gt"),
        '"' => Some("quot"),
        '\'' => Some("apos"),
        '\u{a0}' => Some("nbsp"),
        _ => None,
    };
    alternatives.extend(named.map(|n| format!("&(?:amp;)*{n};")));
    if !c.is_ascii() {
        // its UTF-8 bytes read back as Latin-1 or Windows-1252 (`Ã©`)
        alternatives.push(utf8.iter().map(|b| eight_bit_class(*b)).collect());
        // its byte in Latin-1 or another 8-bit encoding, read as UTF-8
        alternatives.push(literal('\u{fffd}'));
    }
    format!("(?:{})", alternatives.join("|"))
}

/// A character as a pattern that matches it alone.
fn literal(c: char) -> String {
    if c.is_ascii() {
        regex::escape(c.encode_utf8(&mut [0u8; 4]))
    } else {
        format!(r"\x{{{:x}}}", u32::from(c))
    }
}

/// A byte percent-encoded, in either case, or encoded again (`%25C3`).
fn percent(byte: u8) -> String {
    format!("%(?:25)*{}", any_case(&format!("{byte:02x}")))
}

/// Hex digits in either case.
fn any_case(hex: &str) -> String {
    hex.chars()
        .map(|d| {
            if d.is_ascii_alphabetic() {
                format!("[{}{}]", d.to_ascii_lowercase(), d.to_ascii_uppercase())
            } else {
                d.to_string()
            }
        })
        .collect()
}

/// A byte of 0x80 or more as the character Latin-1 or Windows-1252 reads.
fn eight_bit_class(byte: u8) -> String {
    let latin1 = char::from(byte);
    match windows_1252(byte) {
        Some(other) if other != latin1 => format!("[{}{}]", literal(latin1), literal(other)),
        _ => literal(latin1),
    }
}

/// What Windows-1252 reads for a byte where it differs from Latin-1.
fn windows_1252(byte: u8) -> Option<char> {
    const HIGH: [u16; 32] = [
        0x20ac, 0, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160, 0x2039,
        0x0152, 0, 0x017d, 0, 0, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x02dc,
        0x2122, 0x0161, 0x203a, 0x0153, 0, 0x017e, 0x0178,
    ];
    let index = usize::from(byte.checked_sub(0x80)?);
    HIGH.get(index)
        .filter(|c| **c != 0)
        .and_then(|c| char::from_u32(u32::from(*c)))
}

/// The base64 of `bytes` standing `shift` bytes (0 to 2) after the start of
/// a 3-byte group of the encoded data: the characters that come from the
/// secret alone, and the character on each side that is partly the
/// secret's, with the padding when the data ends there. `None` when fewer
/// than four characters come from the secret alone.
fn base64_form(bytes: &[u8], shift: usize, url_safe: bool) -> Option<Form> {
    let mut data = vec![0u8; shift];
    data.extend_from_slice(bytes);
    let engine = if url_safe {
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
    } else {
        &base64::engine::general_purpose::STANDARD_NO_PAD
    };
    let encoded = engine.encode(&data);
    let (start, end) = (8 * shift, 8 * data.len());
    let core = encoded.get(start.div_ceil(6)..end / 6)?;
    if core.len() < 4 {
        return None;
    }
    let class = if url_safe {
        r"[A-Za-z0-9_-]"
    } else {
        r"(?:[A-Za-z0-9+/]|%(?:25)*2[bBfF]|\\+/)"
    };
    let lead = if start % 6 == 0 {
        String::new()
    } else {
        format!("{class}?")
    };
    let tail = if end % 6 == 0 {
        String::new()
    } else {
        format!("(?:{class}(?:=|%(?:25)*3[dD]){{0,2}})?")
    };
    Some(Form {
        lead,
        units: core.chars().map(char_pattern).collect(),
        tail,
    })
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// Every string inside a JSON value.
fn strings_of<'v>(value: &'v Json, out: &mut Vec<&'v str>) {
    match value {
        Json::String(s) => out.push(s),
        Json::Array(items) => items.iter().for_each(|v| strings_of(v, out)),
        Json::Object(map) => map.values().for_each(|v| strings_of(v, out)),
        Json::Null | Json::Bool(_) | Json::Number(_) => {}
    }
}

/// Text as it stands inside a JSON string.
fn json_escaped(text: &str) -> String {
    let json = serde_json::to_string(text).unwrap_or_default();
    json.strip_prefix('"')
        .and_then(|j| j.strip_suffix('"'))
        .unwrap_or(text)
        .to_string()
}

/// A few literal forms of a long secret: as written, JSON-escaped,
/// percent-encoded and base64 at the start of the data.
fn literal_forms(secret: &str) -> Vec<String> {
    let json = json_escaped(secret);
    let base64 = base64::engine::general_purpose::STANDARD.encode(secret.as_bytes());
    let url_base64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret.as_bytes());
    let mut forms = vec![
        secret.to_string(),
        json,
        percent_encoded(secret, true),
        percent_encoded(secret, false),
        base64,
        url_base64,
        hex_lower(secret.as_bytes()),
    ];
    forms.sort();
    forms.dedup();
    forms
}

/// `text` percent-encoded as a query value (`form`: space as `+`) or as a
/// path segment.
fn percent_encoded(text: &str, form: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => out.push(byte as char),
            b' ' if form => out.push('+'),
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    use serde_json::json;

    fn redactor(secret: &str) -> Redactor {
        let mut r = Redactor::default();
        r.add(secret);
        r
    }

    #[test]
    fn hides_secrets_everywhere() {
        let r = redactor("hunter2");
        let mut v = json!({"body": "password=hunter2", "list": ["hunter2"], "hunter2": 1});
        r.json(&mut v);
        assert_eq!(
            v,
            json!({"body": "password=***", "list": ["***"], "***": 1})
        );
    }

    #[test]
    fn hides_the_encoded_forms_too() {
        let r = redactor("a+b/c= d\"e");
        assert_eq!(
            r.text("ws://h/s?token=a%2Bb%2Fc%3D+d%22e&x=1"),
            "ws://h/s?token=***&x=1"
        );
        assert_eq!(r.text("/t/a%2Bb%2Fc%3D%20d%22e/"), "/t/***/");
        assert_eq!(r.text("/t/a%2bb%2fc%3d%20d%22e/"), "/t/***/");
        assert_eq!(r.text("/t/a%252Bb%252Fc%253D%2520d%2522e/"), "/t/***/");
        assert_eq!(r.text(r#"{"t":"a+b/c= d\"e"}"#), r#"{"t":"***"}"#);
        assert_eq!(r.text(r#"{"t":"a+b\/c= d\u0022e"}"#), r#"{"t":"***"}"#);
        assert_eq!(r.text("<p>a&#43;b/c= d&quot;e</p>"), "<p>***</p>");
        assert_eq!(r.text("a+b/c= d\"e"), "***");
    }

    #[test]
    fn hides_every_base64_and_hex_form_wherever_it_stands() {
        let secret = "s3cr3t-pässw0rd!";
        let r = redactor(secret);
        for prefix in ["", "q", "qa", "qa:", "user:", "someone:"] {
            let data = format!("{prefix}{secret}");
            for suffix in ["", "x", "xy", ":tail"] {
                let data = format!("{data}{suffix}");
                for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
                    let encoded = engine.encode(data.as_bytes());
                    let shown = r.text(&format!("Basic {encoded}."));
                    // what is left is the encoding of the prefix and of
                    // the suffix, nothing that comes from the secret
                    let inner = &shown["Basic ".len()..shown.len() - 1];
                    let (before, after) = inner
                        .split_once(MASK)
                        .unwrap_or_else(|| panic!("{data:?} -> {encoded}: {shown}"));
                    assert!(
                        encoded.starts_with(before) && encoded.ends_with(after),
                        "{data:?} -> {encoded}: {shown}"
                    );
                    assert!(before.len() <= 8 * prefix.len() / 6, "{encoded}: {shown}");
                    assert!(
                        after.trim_end_matches('=').len() <= (8 * suffix.len()).div_ceil(6),
                        "{encoded}: {shown}"
                    );
                }
            }
        }
        let hex = hex_lower(secret.as_bytes());
        assert_eq!(r.text(&format!("0x{hex};")), "0x***;");
        assert_eq!(r.text(&format!("0x{};", hex.to_uppercase())), "0x***;");
    }

    #[test]
    fn hides_a_non_ascii_secret_as_a_server_may_echo_it() {
        let r = redactor("çanärÿ-5");
        for echoed in [
            "çanärÿ-5",
            r"\u00e7an\u00e4r\u00ff-5",
            r"\u00E7an\u00E4r\u00FF-5",
            "%C3%A7an%C3%A4r%C3%BF-5",
            "%c3%a7an%c3%a4r%c3%bf-5",
            "%E7an%E4r%FF-5",
            "&#231;an&#228;r&#255;-5",
            "&#xe7;an&#xE4;r&#xff;-5",
            "Ã§anÃ¤rÃ¿-5",
            "\u{fffd}an\u{fffd}r\u{fffd}-5",
        ] {
            assert_eq!(r.text(&format!("<{echoed}>")), "<***>", "{echoed}");
        }
        // UTF-8 read as Windows-1252: `’` is E2 80 99, `â€™`
        let r = redactor("it’s-a-secret");
        assert_eq!(r.text("[itâ€™s-a-secret]"), "[***]");
        // a character outside the basic plane is a surrogate pair in JSON
        let r = redactor("key🔑pass");
        assert_eq!(r.text(r#""key\ud83d\udd11pass""#), r#""***""#);
    }

    #[test]
    fn derived_values_are_hidden_from_four_characters() {
        let mut r = Redactor::default();
        r.add_derived("no");
        r.add_derived_json([&json!({"n": 12, "s": "abc"})], true);
        assert!(r.is_empty());
        r.add_derived("Basic cWE6cHc=");
        assert_eq!(
            r.text("authorization: Basic cWE6cHc="),
            "authorization: ***"
        );
        // secrets themselves are hidden at any length
        r.add("pw");
        assert_eq!(r.text("pw=pw"), "***=***");
    }

    #[test]
    fn a_secret_cut_short_by_a_message_is_hidden_up_to_the_cut() {
        let secret = "s3cr3t-Tok3n";
        let r = redactor(secret);
        assert_eq!(
            r.text("expected `1`, got `\"{\\\"token\\\":\\\"s3cr3t-T…`"),
            "expected `1`, got `\"{\\\"token\\\":\\\"***…`"
        );
        let encoded = STANDARD.encode(format!("qa:{secret}"));
        let cut = &encoded[..12];
        assert_eq!(
            r.text(&format!("got `{cut}…` and s3cr`")),
            "got `cWE6***…` and s3cr`"
        );
        // a cut that shows too little of it to tell is left as it is
        assert_eq!(r.text("got `s3c…`"), "got `s3c…`");
    }

    #[test]
    fn a_derived_value_that_holds_a_secret_is_hidden_whole_without_a_pattern() {
        let mut r = redactor("hunter2");
        assert_eq!(r.text("hunter2"), MASK);
        let built = Arc::clone(&r.matcher);
        r.add_derived_all(["Bearer hunter2", "HUNTER2"], true);
        assert_eq!(
            r.text(r#"{"auth":"Bearer hunter2","up":"HUNTER2","h":"hunter2"}"#),
            r#"{"auth":"***","up":"***","h":"***"}"#
        );
        // only the upper-cased one, which holds no known form, needed a new
        // pattern
        assert!(!Arc::ptr_eq(&built, &r.matcher));
        let built = Arc::clone(&r.matcher);
        r.add_derived("token=hunter2&n=1");
        assert!(Arc::ptr_eq(&built, &r.matcher));
        assert_eq!(r.text("token=hunter2&n=1"), MASK);
        // without `wholes` (for later steps) it is left to the secret in it
        let mut later = redactor("hunter2");
        later.add_derived_all(["token=hunter2&n=1"], false);
        assert_eq!(later.text("token=hunter2&n=1"), "token=***&n=1");
    }

    #[test]
    fn a_header_that_holds_a_secret_is_hidden_whole() {
        let r = redactor("hunter2");
        let mut headers = json!({"authorization": "Bearer hunter2", "accept": "*/*"});
        r.hide_whole_values(&mut headers);
        assert_eq!(headers, json!({"authorization": "***", "accept": "*/*"}));
    }

    #[test]
    fn a_long_secret_is_hidden_in_its_literal_forms() {
        let secret = format!("-----BEGIN KEY-----{}", "k/y+".repeat(600));
        let r = redactor(&secret);
        let base64 = STANDARD.encode(secret.as_bytes());
        assert_eq!(r.text(&format!("<{secret}>")), "<***>");
        assert_eq!(r.text(&format!("<{base64}>")), "<***>");
        assert_eq!(
            r.text(&format!("<{}>", percent_encoded(&secret, true))),
            "<***>"
        );
    }

    #[test]
    fn starring_keeps_every_byte_offset() {
        let r = redactor("pässword");
        let text = "a = \"pässword\"\nb = 1\n";
        let starred = r.star(text).expect("found");
        assert_eq!(starred, "a = \"*********\"\nb = 1\n");
        assert_eq!(starred.len(), text.len());
        assert_eq!(r.star("nothing here"), None);
    }

    #[test]
    fn clones_share_the_pattern_until_one_learns_more() {
        let r = redactor("hunter2");
        let copy = r.clone();
        assert_eq!(copy.text("hunter2"), MASK);
        assert!(Arc::ptr_eq(&r.matcher, &copy.matcher));
        assert!(r.matcher.get().is_some(), "built once, for both");
        let mut more = r.clone();
        more.add("swordfish");
        assert_eq!(more.text("hunter2 swordfish"), "*** ***");
        assert_eq!(r.text("hunter2 swordfish"), "*** swordfish");
    }
}
