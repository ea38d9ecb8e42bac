//! Splitting a long HTML message into parts Telegram accepts (§9: messages
//! over 4096 characters are split). Parts break at line ends when they can,
//! never inside a tag or an entity, and each part is valid HTML on its own:
//! tags still open at a break are closed there and reopened in the next part.
//! Lengths are counted as Telegram counts them: the text after entity
//! parsing, in UTF-16 code units (a tag counts nothing, `&amp;` one).

/// Telegram's longest message text.
pub const MAX_MESSAGE_CHARS: usize = 4096;

/// A piece that is never cut: one character, one entity (`&amp;`), one tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Atom<'a> {
    Text(&'a str),
    Open { raw: &'a str, name: &'a str },
    Close { raw: &'a str },
}

impl Atom<'_> {
    /// What the atom adds to the message's length once Telegram parses it.
    fn len(&self) -> usize {
        match self {
            Atom::Text(s) if s.len() > 1 && s.starts_with('&') => 1,
            Atom::Text(s) => s.encode_utf16().count(),
            Atom::Open { .. } | Atom::Close { .. } => 0,
        }
    }
}

/// `html` in parts of at most `limit` characters (one part when it fits).
pub fn split_html(html: &str, limit: usize) -> Vec<String> {
    let atoms = lines(html);
    if atoms.iter().flatten().map(Atom::len).sum::<usize>() <= limit {
        return vec![html.to_string()];
    }
    let mut parts = Parts {
        limit,
        done: Vec::new(),
        current: String::new(),
        len: 0,
        open: Vec::new(),
    };
    for line in atoms {
        let width: usize = line.iter().map(Atom::len).sum();
        if parts.len + width > limit && parts.has_text() {
            parts.flush();
        }
        for atom in line {
            parts.push(atom);
        }
    }
    parts.finish()
}

/// The longest prefix of `html` within `limit`, cut between atoms (not at a
/// line end) with its open tags closed: for texts that must stay one message.
pub fn truncate_html(html: &str, limit: usize) -> String {
    let mut parts = Parts {
        limit,
        done: Vec::new(),
        current: String::new(),
        len: 0,
        open: Vec::new(),
    };
    for atom in lines(html).into_iter().flatten() {
        parts.push(atom);
        if !parts.done.is_empty() {
            break;
        }
    }
    parts.finish().into_iter().next().unwrap_or_default()
}

struct Parts<'a> {
    limit: usize,
    done: Vec<String>,
    current: String,
    /// Parsed length of `current`.
    len: usize,
    /// Tags open at this point: (name, the opening tag as written).
    open: Vec<(&'a str, &'a str)>,
}

impl<'a> Parts<'a> {
    /// Whether the part holds any text (besides tags reopened at its start).
    fn has_text(&self) -> bool {
        self.len > 0
    }

    fn push(&mut self, atom: Atom<'a>) {
        if self.len + atom.len() > self.limit && self.has_text() {
            self.flush();
        }
        match atom {
            Atom::Open { raw, name } => self.open.push((name, raw)),
            Atom::Close { .. } => {
                self.open.pop();
            }
            Atom::Text(_) => {}
        }
        let (Atom::Text(s) | Atom::Open { raw: s, .. } | Atom::Close { raw: s }) = atom;
        self.current.push_str(s);
        self.len += atom.len();
    }

    /// Ends the part here: open tags are closed, then reopened in the next.
    fn flush(&mut self) {
        let mut part = std::mem::take(&mut self.current);
        for (name, _) in self.open.iter().rev() {
            part.push_str("</");
            part.push_str(name);
            part.push('>');
        }
        let part = part.trim_end_matches('\n').to_string();
        if !part.is_empty() {
            self.done.push(part);
        }
        self.len = 0;
        for (_, raw) in &self.open {
            self.current.push_str(raw);
        }
    }

    fn finish(mut self) -> Vec<String> {
        if self.has_text() {
            self.flush();
        }
        self.done
    }
}

/// The atoms of `html`, grouped in lines (each line keeps its `\n`).
fn lines(html: &str) -> Vec<Vec<Atom<'_>>> {
    let mut lines = vec![Vec::new()];
    let mut rest = html;
    while let Some(c) = rest.chars().next() {
        let end = match c {
            '<' => rest.find('>').map(|i| i + 1),
            // An entity is short and has no spaces; a lone `&` is text.
            '&' => rest
                .find(';')
                .filter(|&i| i <= 10 && !rest[1..i].contains(char::is_whitespace))
                .map(|i| i + 1),
            _ => None,
        }
        .unwrap_or(c.len_utf8());
        let (raw, tail) = rest.split_at(end);
        rest = tail;
        let atom = if raw.len() > 1 && raw.starts_with("</") {
            Atom::Close { raw }
        } else if raw.len() > 1 && raw.starts_with('<') {
            let name = raw[1..raw.len() - 1]
                .split(|ch: char| ch.is_whitespace() || ch == '/')
                .next()
                .unwrap_or_default();
            Atom::Open { raw, name }
        } else {
            Atom::Text(raw)
        };
        if let Some(line) = lines.last_mut() {
            line.push(atom);
        }
        if raw == "\n" {
            lines.push(Vec::new());
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tags balanced, in order, within one part.
    fn balanced(part: &str) -> bool {
        let mut stack = Vec::new();
        for line in lines(part) {
            for atom in line {
                match atom {
                    Atom::Open { name, .. } => stack.push(name.to_string()),
                    Atom::Close { raw } => {
                        if stack.pop().as_deref() != Some(&raw[2..raw.len() - 1]) {
                            return false;
                        }
                    }
                    Atom::Text(_) => {}
                }
            }
        }
        stack.is_empty()
    }

    /// Length as Telegram counts it.
    fn parsed_len(html: &str) -> usize {
        lines(html).iter().flatten().map(Atom::len).sum()
    }

    fn text_of(html: &str) -> String {
        lines(html)
            .into_iter()
            .flatten()
            .filter_map(|a| match a {
                Atom::Text(t) if t != "\n" => Some(t),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_short_message_is_one_part() {
        assert_eq!(split_html("<b>hola</b>", 4096), ["<b>hola</b>"]);
    }

    #[test]
    fn long_messages_break_at_line_ends() {
        let line = "x".repeat(30);
        let html = [line.as_str(); 10].join("\n");
        let parts = split_html(&html, 100);
        assert!(parts.iter().all(|p| parsed_len(p) <= 100), "{parts:?}");
        assert!(parts.iter().all(|p| p.split('\n').all(|l| l == line)), "{parts:?}");
        assert_eq!(parts.concat().replace('\n', ""), html.replace('\n', ""));
    }

    #[test]
    fn open_tags_are_closed_and_reopened_across_a_break() {
        let html = format!("<b>{}</b>\n<i>{}</i>", "ñ".repeat(150), "a &amp; b ".repeat(30));
        let parts = split_html(&html, 64);
        assert!(parts.len() > 2);
        for p in &parts {
            assert!(parsed_len(p) <= 64, "{p}");
            assert!(balanced(p), "unbalanced: {p}");
        }
        assert_eq!(text_of(&parts.concat()), text_of(&html));
        assert!(
            parts
                .iter()
                .all(|p| !p.contains("&amp") || p.matches("&amp;").count() == p.matches("&amp").count())
        );
    }

    #[test]
    fn a_tag_with_attributes_is_reopened_whole() {
        let html = format!("<a href=\"https://t.me/x\">{}</a>", "y".repeat(100));
        let parts = split_html(&html, 60);
        assert!(
            parts
                .iter()
                .all(|p| p.starts_with("<a href=\"https://t.me/x\">") && p.ends_with("</a>"))
        );
        assert_eq!(text_of(&parts.concat()), "y".repeat(100));
    }

    #[test]
    fn markup_does_not_count_towards_the_limit() {
        // 4,000 characters of text, 20,000 of HTML: one message for Telegram.
        let html = "&amp;".repeat(2000) + &"<b>x</b>".repeat(2000);
        assert_eq!(split_html(&html, MAX_MESSAGE_CHARS), std::slice::from_ref(&html));
        // An emoji is two UTF-16 code units.
        let parts = split_html(&"📍".repeat(3000), MAX_MESSAGE_CHARS);
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| parsed_len(p) <= MAX_MESSAGE_CHARS));
    }
}
